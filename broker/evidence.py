"""Evidence verification for ``/attest``: ``tdx`` (with :mod:`teelog.attestation`) and
``sample`` (no TEE, insecure).

TDX ``primary_evidence`` is ``{"quote": base64, "cc_eventlog": base64 | null}`` (guest-components
attester ``tdx/mod.rs``). The quote is verified exactly as ``teelog verify`` verifies a bare
quote (``tdx.quote``, ``tdx.tcb``, ``tdx.collateral``, ``tdx.debug``), then its report_data is
checked against the KBS binding rule (:mod:`teelog.attestation.kbs_binding`) instead of a
node's layout.
``cc_eventlog``, when it holds dstack's JSON event log, is replayed against RTMR0-3
(``eventlog.rtmr``); a binary CCEL (TCG format) is not replayed by teelog, which is an
informative skip: the claims that would come from it stay absent.

``additional_evidence`` is ``""`` or a JSON object of device evidence; its ``"nvidia"`` member
(an NVIDIA payload in any encoding :mod:`teelog.attestation.gpu` reads) is verified with the GPU
nonce of the binding rule. Other members are not verified (informative skip).

``sample`` evidence is ``{"svn": "1", "report_data": base64(64 bytes)}`` (Trustee's sample
attester): nothing vouches for it, so its verdict carries the required ``sample.tee`` skip and
can never be ``verified``; only the binding rule is checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from teelog.attestation import (
    AttestationInputError,
    Collateral,
    EventLogError,
    Measurements,
    Verdict,
    parse_event_log,
    parse_quote,
    verify_quote,
)
from teelog.attestation.eventlog import rtmr_check
from teelog.attestation.kbs_binding import REPORT_DATA_BYTES, binding_check, expected_gpu_nonce
from teelog.attestation.quote import TdReport

from .claims import claims_of
from .errors import KbsError
from .protocol import Attestation, b64decode_strict


@dataclass(slots=True)
class EvidenceResult:
    """What the evidence of one ``/attest`` proved (``verdict``) and the policy's view of it."""

    tee: str
    verdict: Verdict
    claims: dict[str, Any]
    insecure: bool
    quote_sha256: str | None = None
    report_data: str | None = None
    measurements: dict[str, Any] | None = None
    collateral_used: dict[str, bytes] = field(default_factory=dict)


def verify_evidence(
    tee: str,
    attestation: Attestation,
    *,
    nonce: str,
    at: datetime,
    collateral: Collateral,
    rim_dir: str | Path | None = None,
) -> EvidenceResult:
    """Verify ``attestation`` as evidence of type ``tee`` for challenge ``nonce``."""
    if tee == "tdx":
        return _tdx(attestation, nonce, at, collateral, rim_dir)
    if tee == "sample":
        return _sample(attestation, nonce, at, rim_dir)
    raise KbsError("AttestationError", f"tee {tee!r} is not verified by this broker")


def _tdx(
    att: Attestation, nonce: str, at: datetime, collateral: Collateral, rim_dir: Any
) -> EvidenceResult:
    verdict = Verdict(role="kbs-tdx", model=None, signing_address=None)
    result = EvidenceResult("tdx", verdict, {"tee": "tdx"}, insecure=False)
    primary = att.tee_evidence.primary_evidence
    quote_text = primary.get("quote")
    if not isinstance(quote_text, str) or not quote_text:
        verdict.add("tdx.quote", "fail", "primary_evidence.quote must be a base64 string")
        return _finish(result, None, None)
    try:
        raw = b64decode_strict(quote_text, "primary_evidence.quote")
        quote = parse_quote(raw)
        checked = verify_quote(raw, at=at, collateral=collateral)
    except (KbsError, AttestationInputError) as exc:
        detail = exc.detail if isinstance(exc, KbsError) else str(exc)
        verdict.add("tdx.quote", "fail", f"quote unreadable: {detail}")
        return _finish(result, None, None)
    verdict.checks += checked.attestations[0].checks
    result.collateral_used = checked.collateral_documents()  # used and cited (reproducible)
    result.quote_sha256 = quote.sha256
    result.report_data = quote.report_data.hex()
    measurements = checked.attestations[0].measurements or {}
    report = quote.report
    if not isinstance(report, TdReport):
        verdict.add("binding.report_data", "fail", "an SGX quote cannot attest a TD")
        return _finish(result, measurements, None)
    verdict.checks.append(
        binding_check(report.report_data, nonce, att.runtime_data.tee_pubkey,
                      att.tee_evidence.additional_evidence)
    )
    measurements = _event_log(primary.get("cc_eventlog"), report, verdict, measurements)
    measurements = _devices(att, nonce, at, rim_dir, verdict, measurements)
    return _finish(result, measurements, report.td_attributes.debug)


def _event_log(
    value: Any, report: TdReport, verdict: Verdict, measurements: dict[str, Any]
) -> dict[str, Any]:
    if value is None or value == "":
        verdict.add("eventlog.rtmr", "skip", "no cc_eventlog sent", required=False)
        return measurements
    if not isinstance(value, str):
        verdict.add("eventlog.rtmr", "fail", "cc_eventlog must be base64 or null")
        return measurements
    try:
        data = b64decode_strict(value, "cc_eventlog")
    except KbsError as exc:
        verdict.add("eventlog.rtmr", "fail", exc.detail)
        return measurements
    if not data.lstrip().startswith(b"["):
        verdict.add("eventlog.rtmr", "skip", "cc_eventlog is a binary CCEL, which teelog does "
                    "not replay; no claims from the event log", required=False)
        return measurements
    try:
        log = parse_event_log(data)
    except EventLogError as exc:
        verdict.add("eventlog.rtmr", "fail", f"event log unreadable: {exc}")
        return measurements
    check = rtmr_check(log, report)
    verdict.checks.append(check)
    if check.status != "pass":
        return measurements
    identity = log.identity()
    return {**measurements, **{k: identity[k] for k in
                               ("compose_hash", "app_id", "instance_id", "os_image_hash",
                                "key_provider")}}


def _devices(
    att: Attestation, nonce: str, at: datetime, rim_dir: Any, verdict: Verdict,
    measurements: dict[str, Any],
) -> dict[str, Any]:
    text = att.tee_evidence.additional_evidence
    if text == "":
        return measurements
    try:
        devices = json.loads(text)
    except (ValueError, RecursionError) as exc:
        verdict.add("evidence.additional", "fail", f"additional_evidence is not JSON: {exc!r}")
        return measurements
    if not isinstance(devices, dict):
        verdict.add("evidence.additional", "fail", "additional_evidence must be a JSON object")
        return measurements
    others = sorted(k for k in devices if k != "nvidia")
    if others:
        verdict.add("evidence.additional", "skip", f"device evidence {', '.join(others)} not "
                    "verified by teelog", required=False)
    if "nvidia" not in devices:
        return measurements
    from teelog.attestation.gpu import verify_gpu_evidence  # the GPU half, on first use

    gpu = verify_gpu_evidence(
        devices["nvidia"],
        expected_nonce=expected_gpu_nonce(nonce, att.runtime_data.tee_pubkey),
        at=at,
        rim_dir=rim_dir,
    )
    verdict.checks += gpu.checks
    return {**measurements, "gpus": [g.to_json() for g in gpu.gpus]}


def _sample(att: Attestation, nonce: str, at: datetime, rim_dir: Any) -> EvidenceResult:
    verdict = Verdict(role="kbs-sample", model=None, signing_address=None)
    result = EvidenceResult("sample", verdict, {"tee": "sample"}, insecure=True)
    verdict.add("sample.tee", "skip", "INSECURE: sample evidence comes from no TEE; nothing "
                "vouches for it")
    primary = att.tee_evidence.primary_evidence
    text = primary.get("report_data")
    try:
        if not isinstance(text, str):
            raise KbsError("SerdeError", "primary_evidence.report_data must be base64")
        report_data = b64decode_strict(text, "primary_evidence.report_data")
    except KbsError as exc:
        verdict.add("binding.report_data", "fail", exc.detail)
        return _finish(result, None, None)
    if len(report_data) != REPORT_DATA_BYTES:
        verdict.add("binding.report_data", "fail",
                    f"sample report_data is {len(report_data)} bytes, not 64")
        return _finish(result, None, None)
    result.report_data = report_data.hex()
    verdict.checks.append(binding_check(report_data, nonce, att.runtime_data.tee_pubkey,
                                        att.tee_evidence.additional_evidence))
    measurements = _devices(att, nonce, at, rim_dir, verdict, Measurements().to_json())
    return _finish(result, measurements, None)


def _finish(
    result: EvidenceResult, measurements: dict[str, Any] | None, debug: bool | None
) -> EvidenceResult:
    result.measurements = measurements
    result.verdict.measurements = measurements
    result.claims = claims_of(result.tee, result.verdict.checks, measurements, debug)
    return result


__all__ = ["EvidenceResult", "verify_evidence"]
