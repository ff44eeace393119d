"""Claims come from checks that passed; GPUs count only when their evidence verified."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from teelog.attestation import Check, Collateral
from teelog.broker.claims import claims_of, verified_gpus
from teelog.broker.errors import KbsError
from teelog.broker.evidence import verify_evidence
from teelog.broker.protocol import Attestation

M = {"mrtd": "11", "rtmr0": "a0", "rtmr1": "a1", "rtmr2": "a2", "rtmr3": "a3",
     "mr_config_id": "cc", "tcb_status": "OutOfDate", "compose_hash": "ch", "app_id": "ai",
     "os_image_hash": "oh",
     "gpus": [{"index": 0, "driver_version": "550", "vbios_version": "96"},
              {"index": 1, "driver_version": "550", "vbios_version": "96"}]}


def _gpu(i, nonce="pass"):
    return [Check(f"gpu.evidence[{i}]", "pass", ""), Check(f"gpu.chain[{i}]", "pass", ""),
            Check(f"gpu.fwid[{i}]", "skip", "", required=False),
            Check(f"gpu.nonce[{i}]", nonce, "")]


def test_registers_event_log_values_and_tcb_need_their_checks():
    checks = [Check("tdx.quote", "pass", ""), Check("tdx.tcb", "warn", ""),
              Check("eventlog.rtmr", "pass", ""), *_gpu(0), *_gpu(1, nonce="fail")]
    claims = claims_of("tdx", checks, M, False)
    assert claims["tdx.mrtd"] == "11" and claims["tdx.rtmr3"] == "a3"
    assert claims["tcb_status"] == "OutOfDate" and claims["compose_hash"] == "ch"
    assert claims["debug"] is False
    assert claims["gpu.count"] == 1 and claims["gpu.driver"] == ["550"]


def test_nothing_but_tee_and_gpu_count_without_a_verified_quote():
    checks = [Check("tdx.quote", "fail", "bad signature"), Check("tdx.tcb", "fail", ""),
              Check("eventlog.rtmr", "pass", "")]
    assert claims_of("tdx", checks, M, True) == {"tee": "tdx", "gpu.count": 0}


def test_event_log_claims_need_a_replaying_log():
    checks = [Check("tdx.quote", "pass", ""), Check("eventlog.rtmr", "fail", "")]
    claims = claims_of("tdx", checks, M, False)
    assert "compose_hash" not in claims and "app_id" not in claims
    assert "tcb_status" not in claims  # tdx.tcb was not evaluated


def test_a_gpu_listed_twice_does_not_count():
    checks = [*_gpu(0), Check("gpu.evidence[1]", "warn", "same device"), Check(
        "gpu.chain[1]", "pass", ""), Check("gpu.nonce[1]", "pass", "")]
    assert verified_gpus(checks) == {0}


def test_evidence_of_a_tee_teelog_does_not_verify_is_refused():
    att = Attestation.from_json({
        "runtime-data": {"nonce": "n", "tee-pubkey": {"kty": "EC"}},
        "tee-evidence": {"primary_evidence": {}, "additional_evidence": ""},
    })
    with pytest.raises(KbsError, match="snp"):
        verify_evidence("snp", att, nonce="n", at=datetime.now(UTC), collateral=Collateral())
