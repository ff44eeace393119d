"""verify_report / verify_quote on the real reports, with the README's expected results."""

from __future__ import annotations

import base64
import json

import pytest
from attestation_data import (
    AT_NEAR_GATEWAY,
    AT_NEAR_MODEL,
    AT_NEARMPC_2025,
    AT_V4_UPTODATE,
    AT_V5,
    NEAR_NONCE,
    REPORTS,
    collateral_doc,
    near_bundle,
    quote_bytes,
)
from teelog.attestation import (
    Collateral,
    Measurements,
    ReportFormatError,
    detect_format,
    verify_quote,
    verify_report,
)
from teelog.attestation.errors import QuoteFormatError


def _checks(verdict):
    return {c.name: c for c in verdict.checks}


@pytest.fixture(scope="module")
def near_collateral():
    return Collateral([collateral_doc("dcapqvl_tdx_v5"), collateral_doc("nearmpc_2026_tdx_v4")])


def test_near_model_attestation_verifies_with_8_gpus(near_collateral):
    result = verify_report(
        near_bundle(), nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=near_collateral
    )
    gateway, model = result.attestations
    assert (gateway.role, model.role, model.model) == ("gateway", "model", "openai/gpt-oss-120b")
    assert model.status == "verified"
    checks = _checks(model)
    for name in (
        "tdx.quote",
        "tdx.tcb",
        "tdx.collateral",
        "tdx.debug",
        "binding.report_data",
        "binding.nonce",
        "eventlog.rtmr",
        "eventlog.compose",
        "eventlog.info",
    ):
        assert checks[name].status == "pass", (name, checks[name].detail)
    for i in range(8):
        for kind in ("evidence", "chain", "fwid", "nonce"):
            assert checks[f"gpu.{kind}[{i}]"].status == "pass"
        assert checks[f"gpu.rim[{i}]"].status == "skip" and not checks[f"gpu.rim[{i}]"].required
    m = Measurements.from_json(model.measurements)
    assert m.tcb_status == "UpToDate" and m.advisory_ids == ()
    assert m.compose_hash == "242a62724303cc32f364da0fc92738706b0078e7587821b7ba3e75488223797b"
    assert len(m.gpus) == 8 and {g.driver_version for g in m.gpus} == {"570.172.08"}
    assert {g.vbios_version for g in m.gpus} == {"96.00.cf.00.02"}
    # The gateway's collateral (Aug-Sep 2026) is not valid yet in March 2026: it is not used,
    # the gateway's own signatures still verify, and the reason names the archived window.
    gateway_checks = _checks(gateway)
    assert gateway_checks["tdx.quote"].status == "pass"
    assert gateway_checks["tdx.collateral"].status == "skip"
    assert "archived only for the [issue, next update] window [2026-08-13T10:45:38Z" in (
        gateway_checks["tdx.collateral"].detail
    )
    assert gateway.status == "unverifiable" and result.status == "unverifiable"
    assert set(result.collateral_used) == {"90c06f000000"}


def test_near_gateway_is_out_of_date_with_nine_advisories(near_collateral):
    result = verify_report(
        near_bundle(), nonce=NEAR_NONCE, at=AT_NEAR_GATEWAY, collateral=near_collateral
    )
    gateway = result.attestations[0]
    assert gateway.status == "warning"
    m = Measurements.from_json(gateway.measurements)
    assert m.tcb_status == "OutOfDate"
    assert m.advisory_ids == (
        "INTEL-SA-01036",
        "INTEL-SA-01079",
        "INTEL-SA-01099",
        "INTEL-SA-01103",
        "INTEL-SA-01111",
        "INTEL-SA-01192",
        "INTEL-SA-01245",
        "INTEL-SA-01312",
        "INTEL-SA-01313",
    )
    assert m.gpus == ()


def test_without_a_nonce_the_model_still_verifies_and_says_replay_is_not_excluded(near_collateral):
    result = verify_report(near_bundle(), at=AT_NEAR_MODEL, collateral=near_collateral)
    model = result.attestations[1]
    assert model.status == "verified"
    assert "replay not excluded" in _checks(model)["binding.nonce"].detail


def test_without_collateral_everything_is_unverifiable():
    result = verify_report(near_bundle(), nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=None)
    assert [v.status for v in result.attestations] == ["unverifiable", "unverifiable"]
    assert result.status == "unverifiable"


def test_vllm_proxy_sample_getquote_plus_info_verifies():
    doc = json.loads((REPORTS / "vllmproxy_sample_dstack_getquote.json").read_text())
    doc["info"] = json.loads((REPORTS / "vllmproxy_sample_dstack_info.json").read_text())
    assert detect_format(doc) == "vllm-proxy"
    result = verify_report(
        doc, at=AT_NEARMPC_2025, collateral=[collateral_doc("dcapqvl_nearmpc_tdx_v4")]
    )
    verdict = result.attestations[0]
    checks = _checks(verdict)
    assert verdict.role == "node"
    assert [
        checks[n].status
        for n in ("tdx.quote", "tdx.tcb", "eventlog.rtmr", "eventlog.compose", "eventlog.info")
    ] == ["pass"] * 5
    # report_data is 0x01 x 64 (a test value) and the sample names no signer.
    assert checks["binding.report_data"].status == "skip"
    assert verdict.status == "unverifiable"
    m = Measurements.from_json(verdict.measurements)
    assert m.compose_hash.startswith("62dd36d2") and m.key_provider.startswith('{"name":"kms"')


def test_dstack_verifier_fixture_replays_but_has_no_compose_file():
    doc = json.loads((REPORTS / "dstack_verifier_fixture_quote-report.json").read_text())
    result = verify_report(doc, at=AT_V5, collateral=[collateral_doc("dcapqvl_tdx_v5")])
    checks = _checks(result.attestations[0])
    assert checks["tdx.tcb"].status == "pass" and checks["eventlog.rtmr"].status == "pass"
    assert checks["eventlog.compose"].status == "skip"


def test_simulator_quote_and_compose_fail():
    sim = REPORTS / "dstack_simulator_v0.5.3"
    doc = {
        "quote": (sim / "quote.hex").read_text().strip(),
        "event_log": (sim / "eventlog.json").read_text(),
        "info": {"tcb_info": {"app_compose": (sim / "app-compose.json").read_text()}},
    }
    result = verify_report(
        doc, at=AT_V4_UPTODATE, collateral=[collateral_doc("dcapqvl_tdx_v4_uptodate")]
    )
    checks = _checks(result.attestations[0])
    assert (
        checks["tdx.tcb"].status == "fail" and "No matching TCB level" in checks["tdx.tcb"].detail
    )
    assert checks["eventlog.rtmr"].status == "pass"
    assert checks["eventlog.compose"].status == "fail"
    assert result.status == "failed"


def test_legacy_private_ml_sdk_sample_is_out_of_date_and_binding_unverifiable():
    doc = json.loads((REPORTS / "privatemlsdk_e2e_quote_sample_2025-01.json").read_text())
    result = verify_report(doc, at=AT_V5, collateral=[collateral_doc("dcapqvl_tdx_v5")])
    verdict = result.attestations[0]
    checks = _checks(verdict)
    assert checks["tdx.tcb"].status == "warn"
    assert checks["binding.report_data"].status == "skip"
    assert checks["eventlog.rtmr"].status == "skip"
    assert verdict.status != "verified"


def test_chutes_bundle_is_read_and_its_binding_checked():
    model = near_bundle()["model_attestations"][0]
    payload = json.loads(model["nvidia_payload"])
    doc = {
        "attestation_type": "chutes",
        "nonce": NEAR_NONCE,
        "all_attestations": [
            {
                "instance_id": "chute-1",
                "nonce": NEAR_NONCE,
                "e2e_pubkey": base64.b64encode(b"k" * 32).decode(),
                "intel_quote": base64.b64encode(bytes.fromhex(model["intel_quote"])).decode(),
                "gpu_evidence": payload["evidence_list"],
            }
        ],
    }
    assert detect_format(doc) == "redpill-chutes"
    result = verify_report(
        doc, nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=[collateral_doc("dcapqvl_tdx_v5")]
    )
    checks = _checks(result.attestations[0])
    assert checks["tdx.quote"].status == "pass"
    # This quote uses the vllm-proxy layout, so the chutes rule cannot hold: fail, not pass.
    assert checks["binding.report_data"].status == "fail"
    # The GPUs are then held to report_data[0:32], which is not their nonce.
    assert checks["gpu.nonce[0]"].status == "fail"
    assert result.status == "failed"


def test_all_attestations_yield_one_verdict_each_without_duplicates():
    model = near_bundle()["model_attestations"][0]
    other = {**model, "intel_quote": near_bundle()["gateway_attestation"]["intel_quote"]}
    doc = {**model, "all_attestations": [model, other, model]}
    result = verify_report(doc, at=AT_NEAR_MODEL, collateral=None)
    assert len(result.attestations) == 2


def test_unreadable_quote_inside_a_report_fails_that_attestation_only():
    bundle = near_bundle()
    bundle["gateway_attestation"]["intel_quote"] = "04000200"
    result = verify_report(bundle, at=AT_NEAR_MODEL, collateral=[collateral_doc("dcapqvl_tdx_v5")])
    assert _checks(result.attestations[0])["tdx.quote"].status == "fail"
    assert result.attestations[1].status == "verified"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"hello": 1},
        {"attestation_type": "chutes"},
        {"model_attestations": "x"},
        {"intel_quote": 5},
        {"gateway_attestation": []},
    ],
)
def test_unknown_documents_raise_report_format_error(doc):
    with pytest.raises(ReportFormatError):
        verify_report(doc, at=AT_NEAR_MODEL, collateral=None)


def test_report_bytes_that_are_not_json_raise():
    with pytest.raises(ReportFormatError):
        verify_report(b"\xff\xfe", at=AT_NEAR_MODEL, collateral=None)


def test_verify_quote_accepts_bytes_and_hex():
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    coll = collateral_doc("dcapqvl_tdx_v4_uptodate")
    for form in (raw, raw.hex()):
        result = verify_quote(form, at=AT_V4_UPTODATE, collateral=coll)
        assert result.status == "verified"
        assert result.to_json()["attestations"][0]["role"] == "quote"
    with pytest.raises(QuoteFormatError):
        verify_quote(b"garbage", at=AT_V4_UPTODATE)


def test_result_json_has_the_fixed_shape(near_collateral):
    out = verify_report(near_bundle(), at=AT_NEAR_MODEL, collateral=near_collateral).to_json()
    assert set(out) == {"status", "attestations"}
    for att in out["attestations"]:
        assert {"role", "model", "signing_address", "status", "checks"} <= set(att)
        assert all(set(c) == {"name", "status", "detail"} for c in att["checks"])


def test_quote_without_a_pck_chain_fails_with_the_reason():
    import struct

    raw = bytearray(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    # Inner certification data type 5 (PCK chain) -> 3 (encrypted PPID): no chain to read.
    inner = 632 + 4 + 128 + 6 + 384 + 64
    (auth_len,) = struct.unpack_from("<H", raw, inner)
    struct.pack_into("<H", raw, inner + 2 + auth_len, 3)
    result = verify_quote(
        bytes(raw), at=AT_V4_UPTODATE, collateral=collateral_doc("dcapqvl_tdx_v4_uptodate")
    )
    checks = {c.name: c for c in result.attestations[0].checks}
    assert checks["tdx.collateral"].status == "skip"
    assert "certification data type 3" in checks["tdx.collateral"].detail
    # Nothing ties the attestation key to Intel: a node must not turn "failed" into
    # "unverifiable" by dropping its chain (dcap-qvl rejects this format too).
    assert checks["tdx.quote"].status == "fail"
    assert "certification data type 3 carries no PCK certificate chain" in (
        checks["tdx.quote"].detail
    )
    assert result.status == "failed"
