"""An adversarial corpus built from the real NEAR AI bundle: each mutation must make its check
fail, and none may yield ``verified``.

The base is the model attestation, which verifies at AT_NEAR_MODEL with the 2026-02 collateral.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable

import pytest
from attestation_data import (
    AT_NEAR_MODEL,
    NEAR_NONCE,
    V4_MRTD,
    V4_REPORT_DATA,
    V4_TD_ATTRIBUTES,
    collateral_doc,
    near_bundle,
)
from teelog.attestation import load_collateral, verify_report

COLLATERAL = collateral_doc("dcapqvl_tdx_v5")


def _model_doc() -> dict:
    return {"model_attestations": [near_bundle()["model_attestations"][0]]}


def _quote_flip(offset: int, mask: int = 1) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        att = doc["model_attestations"][0]
        raw = bytearray(bytes.fromhex(att["intel_quote"]))
        raw[offset] ^= mask
        att["intel_quote"] = raw.hex()

    return mutate


def _set(path: list, value) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        target = doc["model_attestations"][0]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _event(name: str, payload_hex: str) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        for event in doc["model_attestations"][0]["event_log"]:
            if event["event"] == name:
                event["event_payload"] = payload_hex

    return mutate


def _gpu(mutate_payload: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        att = doc["model_attestations"][0]
        payload = json.loads(att["nvidia_payload"])
        mutate_payload(payload)
        att["nvidia_payload"] = json.dumps(payload)

    return mutate


def _swap_evidence(payload: dict) -> None:
    items = payload["evidence_list"]
    items[0]["evidence"], items[1]["evidence"] = items[1]["evidence"], items[0]["evidence"]


def _flip_evidence_byte(payload: dict) -> None:
    raw = bytearray(base64.b64decode(payload["evidence_list"][3]["evidence"]))
    raw[-10] ^= 1  # inside the signature
    payload["evidence_list"][3]["evidence"] = base64.b64encode(bytes(raw)).decode()


def _flip_certificate(payload: dict) -> None:
    pem = base64.b64decode(payload["evidence_list"][5]["certificate"]).decode()
    lines = pem.splitlines()
    i = next(n for n, line in enumerate(lines) if len(line) > 60 and n > 25)
    lines[i] = lines[i][:30] + ("A" if lines[i][30] != "A" else "B") + lines[i][31:]
    payload["evidence_list"][5]["certificate"] = base64.b64encode(
        "\n".join(lines).encode()
    ).decode()


MUTATIONS: dict[str, tuple[Callable[[dict], None], str, str | None]] = {
    # name: (mutation, check that must fail, nonce to pass or None for NEAR_NONCE)
    "quote mr_td flip": (_quote_flip(V4_MRTD), "tdx.quote", None),
    "quote report_data flip": (_quote_flip(V4_REPORT_DATA), "tdx.quote", None),
    "quote signature flip": (_quote_flip(640), "tdx.quote", None),
    "quote attestation key flip": (_quote_flip(700), "tdx.quote", None),
    "QE report flip": (_quote_flip(632 + 4 + 128 + 6 + 50), "tdx.quote", None),
    "debug TD": (_quote_flip(V4_TD_ATTRIBUTES), "tdx.debug", None),
    "report for another address": (
        _set(["signing_address"], "0x" + "ab" * 20),
        "binding.report_data",
        None,
    ),
    "report for another nonce": (_set(["request_nonce"], "cd" * 32), "binding.report_data", None),
    "replayed report, fresh nonce expected": (lambda doc: None, "binding.nonce", "ef" * 32),
    "RTMR3 payload tampered": (_event("os-image-hash", "00" * 32), "eventlog.rtmr", None),
    "compose file not matching": (
        _set(["info", "tcb_info", "app_compose"], "services: {}\n"),
        "eventlog.compose",
        None,
    ),
    "info rtmr claim wrong": (
        _set(["info", "tcb_info", "rtmr1"], "00" * 48),
        "eventlog.info",
        None,
    ),
    "swapped GPU evidence": (_gpu(_swap_evidence), "gpu.evidence[0]", None),
    "GPU evidence byte flip": (_gpu(_flip_evidence_byte), "gpu.evidence[3]", None),
    "GPU certificate flip": (_gpu(_flip_certificate), "gpu.chain[5]", None),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_fails_its_check_and_is_never_verified(name):
    mutate, check_name, nonce = MUTATIONS[name]
    doc = copy.deepcopy(_model_doc())
    mutate(doc)
    result = verify_report(
        doc, nonce=nonce or NEAR_NONCE, at=AT_NEAR_MODEL, collateral=[COLLATERAL]
    )
    verdict = result.attestations[0]
    checks = {c.name: c for c in verdict.checks}
    assert check_name in checks, sorted(checks)
    assert checks[check_name].status == "fail", checks[check_name].detail
    assert verdict.status == "failed"
    assert result.status != "verified"


def test_the_unmutated_base_verifies():
    result = verify_report(
        _model_doc(), nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=[COLLATERAL]
    )
    assert result.status == "verified"


def test_collateral_archived_for_another_window_is_not_used_and_the_reason_lists_it():
    # 2026-03-21: one day after the collateral's next update; the PCK certificate is valid.
    result = verify_report(_model_doc(), nonce=NEAR_NONCE, at=1774100000, collateral=[COLLATERAL])
    checks = {c.name: c for c in result.attestations[0].checks}
    assert checks["tdx.collateral"].status == "skip"
    assert checks["tdx.collateral"].detail == (
        "collateral for TDX FMSPC 90c06f000000 is archived only for the [issue, next update] "
        "window [2026-02-18T10:58:51Z, 2026-03-20T10:41:15Z], which does not cover the "
        "verification time 2026-03-21T13:33:20Z"
    )
    assert checks["tdx.quote"].status == "pass"
    assert result.status == "unverifiable"


def test_before_the_pck_certificate_was_issued_the_quote_fails_without_collateral():
    # 2026-02-13: before the collateral window and before the PCK certificate's notBefore.
    result = verify_report(_model_doc(), nonce=NEAR_NONCE, at=1771000000, collateral=[COLLATERAL])
    checks = {c.name: c for c in result.attestations[0].checks}
    assert checks["tdx.collateral"].status == "skip"
    assert "archived only" in checks["tdx.collateral"].detail
    assert checks["tdx.quote"].status == "fail"
    assert "not at the verification time 2026-02-13T16:26:40Z" in checks["tdx.quote"].detail
    assert result.status == "failed"


def test_collateral_byte_flip_is_never_verified():
    obj = json.loads(COLLATERAL.canonical)
    sig = obj["qe_identity_signature"]
    obj["qe_identity_signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    result = verify_report(
        _model_doc(), nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=[load_collateral(obj)]
    )
    checks = {c.name: c for c in result.attestations[0].checks}
    assert checks["tdx.quote"].status == "fail"
    assert result.status == "failed"
