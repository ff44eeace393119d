"""Report formats and the verification of a whole report: one :class:`Verdict` per attestation.

Formats (docs/attestation.md "Report formats"):

- ``vllm-proxy``: ``/v1/attestation/report`` of the Python or Rust signing proxy
  (``signing_address, signing_algo, request_nonce, intel_quote, nvidia_payload, event_log,
  info[, all_attestations]``); a dstack ``GetQuote`` response (``quote, event_log``) is read the
  same way, without a signer;
- ``near-gateway``: NEAR AI Cloud bundle ``{gateway_attestation, model_attestations[]}``;
- ``redpill-chutes``: ``{attestation_type: "chutes", nonce, all_attestations: [{instance_id,
  nonce, e2e_pubkey, intel_quote (base64), gpu_evidence[]}]}``.

Every value in a report is untrusted: the quote is verified with dcap-qvl, and everything else
is checked against the verified quote (report_data, RTMRs, MRCONFIGID) before it counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .binding import BindingClaims, verify_binding
from .collateral import Collateral, CollateralDoc
from .errors import AttestationInputError, EventLogError, ReportFormatError
from .eventlog import EventLog, compose_check, info_check, parse_event_log, rtmr_check
from .inputs import REPORT_FORMATS, UntrustedJSONError, detect_report_format, parse_json
from .measurements import GpuMeasurement, Measurements
from .quote import Quote, TdReport, decode_quote_bytes, parse_quote
from .tdx import TdxResult, as_datetime, verify_tdx
from .verdict import Check, Result, Verdict, malformed_evidence

FORMATS = REPORT_FORMATS
CollateralSource = Collateral | CollateralDoc | Iterable[CollateralDoc] | None


@dataclass(frozen=True, slots=True)
class Attestation:
    """One attestation inside a report, as the report states it (untrusted)."""

    role: str  # "model" | "gateway" | "node"
    model: str | None
    signing_address: str | None
    signing_algo: str | None
    quote: Any  # hex or base64 text; None when the report carries no quote (no TEE)
    event_log: Any = None
    info: dict[str, Any] | None = None
    gpu_payload: Any = None  # nvidia_payload (string or object) or a chutes gpu_evidence list
    request_nonce: str | None = None
    tls_cert_fingerprint: str | None = None
    e2e_pubkey: str | None = None
    chutes: bool = False


def load_document(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """A report document from JSON bytes/text (or a dict, returned as is), read strictly
    (:func:`.inputs.parse_json`)."""
    if isinstance(data, dict):
        return data
    try:
        doc = parse_json(data)
    except UntrustedJSONError as exc:
        raise ReportFormatError(f"report is not JSON teelog reads: {exc}") from exc
    if not isinstance(doc, dict):
        raise ReportFormatError("report JSON must be an object")
    return doc


def detect_format(doc: dict[str, Any]) -> str:
    """``vllm-proxy``, ``near-gateway`` or ``redpill-chutes``, by
    :func:`.inputs.detect_report_format`; ReportFormatError otherwise."""
    fmt = detect_report_format(doc)
    if fmt is not None:
        return fmt
    keys = ", ".join(sorted(doc)[:8])
    raise ReportFormatError(f"not a known attestation report format (keys: {keys})")


def report_attestations(doc: dict[str, Any]) -> tuple[str, list[Attestation]]:
    """The format of ``doc`` and the attestations it contains, in order."""
    fmt = detect_format(doc)
    if fmt == "redpill-chutes":
        items = doc.get("all_attestations")
        if not isinstance(items, list) or not items:
            raise ReportFormatError("chutes report without all_attestations")
        return fmt, [_chutes(item, doc) for item in items]
    if fmt == "near-gateway":
        out = []
        gateway = doc.get("gateway_attestation")
        if gateway is not None:
            out.append(_proxy(_obj(gateway, "gateway_attestation"), role="gateway"))
        models = doc.get("model_attestations") or []
        if not isinstance(models, list):
            raise ReportFormatError("model_attestations must be a list")
        for i, item in enumerate(models):
            out.append(_proxy(_obj(item, f"model_attestations[{i}]"), role="model"))
        if not out:
            raise ReportFormatError("NEAR bundle without any attestation")
        return fmt, out
    entries = doc.get("all_attestations")
    if isinstance(entries, list) and entries:
        out, seen = [], set()
        for i, item in enumerate(entries):
            entry = _obj(item, f"all_attestations[{i}]")
            key = entry.get("intel_quote") or entry.get("quote")
            if key in seen:
                continue
            seen.add(key)
            out.append(_proxy(entry, role=None))
        return fmt, out
    return fmt, [_proxy(doc, role=None)]


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportFormatError(f"{where} must be an object")
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _proxy(entry: dict[str, Any], role: str | None) -> Attestation:
    quote = entry.get("intel_quote") if "intel_quote" in entry else entry.get("quote")
    if quote is not None and (not isinstance(quote, str) or not quote):
        raise ReportFormatError("intel_quote must be a non-empty hex or base64 string, or null")
    info = entry.get("info")
    model = _str(entry.get("model_name")) or _str(entry.get("model"))
    return Attestation(
        role=role or ("model" if model else "node"),
        model=model,
        signing_address=_str(entry.get("signing_address")),
        signing_algo=_str(entry.get("signing_algo")),
        quote=quote,
        event_log=entry.get("event_log"),
        info=info if isinstance(info, dict) else None,
        gpu_payload=entry.get("nvidia_payload"),
        request_nonce=_str(entry.get("request_nonce")),
        tls_cert_fingerprint=_str(entry.get("tls_cert_fingerprint")),
    )


def _no_quote_reason(att: Attestation) -> str:
    """Why an attestation without a quote cannot be verified, in the report's own words."""
    declared = (att.info or {}).get("tee")
    if declared == "none":
        return ("the node declares no TEE (tee: none): nothing in this report is attested, "
                "so its signing key is vouched for by nothing")
    return "the report carries no TDX quote: nothing in it is attested"


def _chutes(item: Any, doc: dict[str, Any]) -> Attestation:
    entry = _obj(item, "chutes attestation")
    quote = entry.get("intel_quote")
    if not isinstance(quote, str) or not quote:
        raise ReportFormatError("chutes attestation without intel_quote")
    return Attestation(
        role="model",
        model=_str(doc.get("model")) or _str(entry.get("model")),
        signing_address=None,  # chutes binds an E2E encryption key, not a signing key
        signing_algo=None,
        quote=quote,
        event_log=entry.get("event_log"),
        gpu_payload=entry.get("gpu_evidence"),
        request_nonce=_str(entry.get("nonce")) or _str(doc.get("nonce")),
        e2e_pubkey=_str(entry.get("e2e_pubkey")),
        chutes=True,
    )


def verify_report(
    doc: bytes | str | dict[str, Any],
    *,
    nonce: bytes | str | None = None,
    at: datetime | int | float,
    collateral: CollateralSource,
    rim_dir: str | Path | None = None,
    jwks: Any = None,
    nras: Any = None,
) -> Result:
    """Verify a report or bundle as of ``at``: one verdict per attestation it contains.

    ``nonce`` is the nonce the caller sent (bytes or hex); without it ``binding.nonce`` is an
    informative ``skip``. ``collateral`` is matched to each quote by FMSPC. ``rim_dir``,
    ``jwks`` and ``nras`` are passed to the GPU verification. Raises
    :class:`ReportFormatError` only when ``doc`` is not a report at all.
    """
    when = as_datetime(at)
    expected = _nonce_bytes(nonce)
    source = _collateral(collateral)
    _, attestations = report_attestations(load_document(doc))
    result = Result()
    for att in attestations:
        verdict, tdx = verify_attestation(
            att,
            nonce=expected,
            at=when,
            collateral=source,
            rim_dir=rim_dir,
            jwks=jwks,
            nras=nras,
        )
        result.attestations.append(verdict)
        if tdx is not None:
            _record_collateral(result, tdx)
    return result


def _record_collateral(result: Result, tdx: TdxResult) -> None:
    if tdx.collateral is not None:
        result.collateral_used[tdx.collateral.fmspc] = tdx.collateral.canonical
    for doc in tdx.cited:
        result.collateral_cited[doc.sha256] = doc.canonical


def verify_quote(
    quote: bytes | str,
    *,
    at: datetime | int | float,
    collateral: CollateralSource = None,
) -> Result:
    """Verify a bare quote (binary, hex or base64): the ``tdx.*`` checks only.

    Raises :class:`QuoteFormatError` when the bytes are not a quote.
    """
    when = as_datetime(at)
    try:
        parsed = parse_quote(decode_quote_bytes(quote))
    except AttestationInputError:
        raise
    except Exception as exc:  # bytes that crash the parser are malformed evidence
        failed = Verdict(role="quote", model=None, signing_address=None)
        failed.checks.append(malformed_evidence("tdx.quote", exc))
        return Result(attestations=[failed])
    tdx = _verify_tdx(parsed, _collateral(collateral), when)
    verdict = Verdict(role="quote", model=None, signing_address=None, checks=list(tdx.checks))
    verdict.measurements = _measurements(parsed, tdx, None, []).to_json()
    result = Result(attestations=[verdict])
    _record_collateral(result, tdx)
    return result


def verify_gpu_payload(
    payload: Any,
    *,
    nonce: bytes | str | None,
    at: datetime | int | float,
    rim_dir: str | Path | None = None,
    jwks: Any = None,
    nras: Any = None,
) -> Result:
    """Verify a bare ``nvidia_payload`` (research note gpu-attestation.md §1): the ``gpu.*``
    checks only, role ``gpu``. ``nonce`` is the nonce the GPU evidence must carry; without it
    ``gpu.nonce`` is a ``skip`` (nothing binds the evidence to a request)."""
    from .gpu import verify_gpu_evidence  # the GPU half; imported on first GPU evidence

    gpu = verify_gpu_evidence(
        payload,
        expected_nonce=_nonce_bytes(nonce),
        at=as_datetime(at),
        rim_dir=rim_dir,
        jwks=jwks,
        nras=nras,
    )
    verdict = Verdict(role="gpu", model=None, signing_address=None, checks=list(gpu.checks))
    verdict.measurements = Measurements(gpus=tuple(gpu.gpus)).to_json()
    return Result(attestations=[verdict])


def verify_attestation(
    att: Attestation,
    *,
    nonce: bytes | None,
    at: datetime,
    collateral: Collateral,
    rim_dir: str | Path | None = None,
    jwks: Any = None,
    nras: Any = None,
) -> tuple[Verdict, TdxResult | None]:
    """The verdict on one attestation and its ``tdx.*`` result, with the collateral used and
    cited (None without a readable quote); never raises on bad evidence."""
    verdict = Verdict(
        role=att.role,
        model=att.model,
        signing_address=att.signing_address,
        signing_algo=att.signing_algo,
    )
    if att.quote is None:
        verdict.add("tdx.quote", "skip", _no_quote_reason(att))
        return verdict, None
    try:
        quote = parse_quote(decode_quote_bytes(att.quote))
    except AttestationInputError as exc:
        verdict.add("tdx.quote", "fail", f"quote unreadable: {exc}")
        return verdict, None
    except Exception as exc:  # the node's bytes crashed the parser: malformed evidence
        verdict.checks.append(malformed_evidence("tdx.quote", exc))
        return verdict, None
    tdx = _verify_tdx(quote, collateral, at)
    verdict.checks.extend(tdx.checks)
    if not isinstance(quote.report, TdReport):
        verdict.add("binding.report_data", "fail", "an SGX quote cannot attest a TDX node")
        return verdict, tdx
    report = quote.report

    # Each stage below reads evidence the node sent; an exception in one is the fail of that
    # stage's check (malformed evidence) and the later stages still run.
    gpu_nonce: bytes | None = None
    try:
        binding = verify_binding(
            report.report_data,
            BindingClaims(
                signing_address=att.signing_address,
                signing_algo=att.signing_algo,
                request_nonce=att.request_nonce,
                tls_cert_fingerprint=att.tls_cert_fingerprint,
                e2e_pubkey=att.e2e_pubkey,
                chutes=att.chutes,
            ),
            nonce,
        )
    except Exception as exc:
        verdict.checks.append(malformed_evidence("binding.report_data", exc))
    else:
        verdict.checks += [binding.report_data, binding.nonce]
        gpu_nonce = binding.gpu_nonce

    log: EventLog | None = None
    try:
        log = _event_log_checks(att, report, verdict)
    except Exception as exc:
        verdict.checks.append(malformed_evidence("eventlog.rtmr", exc))
    gpus: list[GpuMeasurement] = []
    try:
        gpus = _gpu_checks(att, gpu_nonce, at, rim_dir, jwks, nras, verdict)
    except Exception as exc:
        verdict.checks.append(malformed_evidence("gpu.evidence", exc))
    verdict.measurements = _measurements(quote, tdx, log, gpus).to_json()
    return verdict, tdx


def _verify_tdx(quote: Quote, collateral: Collateral, at: datetime) -> TdxResult:
    """The ``tdx.*`` checks; an exception on the quote's content is a ``tdx.quote`` fail."""
    try:
        return _verify_tdx_checks(quote, collateral, at)
    except Exception as exc:
        return TdxResult(checks=[malformed_evidence("tdx.quote", exc)])


def _verify_tdx_checks(quote: Quote, collateral: Collateral, at: datetime) -> TdxResult:
    if quote.fmspc is None:
        reason = (
            f"the quote embeds no readable PCK certificate chain (certification data type "
            f"{quote.certification.cert_type}), so its platform (FMSPC) is unknown"
        )
        return verify_tdx(quote, None, at, missing_reason=reason)
    choice = collateral.choose(quote, at)
    tdx = verify_tdx(quote, choice.doc, at, missing_reason=choice.reason)
    tdx.cited = choice.cited
    return tdx


def _event_log_checks(att: Attestation, report: TdReport, verdict: Verdict) -> EventLog | None:
    info = att.info or {}
    tcb_info = _tcb_info(info)
    raw_log = att.event_log
    if raw_log is None and tcb_info is not None:
        raw_log = tcb_info.get("event_log")
    if raw_log is None or raw_log == "":
        verdict.add("eventlog.rtmr", "skip", "report carries no event log")
        verdict.add("eventlog.compose", "skip", "no event log, so no measured compose hash")
        _append(verdict, "eventlog.info", lambda: info_check(tcb_info, info, None, report))
        return None
    try:
        log = parse_event_log(raw_log)
    except EventLogError as exc:
        verdict.add("eventlog.rtmr", "fail", f"event log unreadable: {exc}")
        verdict.add("eventlog.compose", "fail", "event log unreadable")
        _append(verdict, "eventlog.info", lambda: info_check(tcb_info, info, None, report))
        return None
    _append(verdict, "eventlog.rtmr", lambda: rtmr_check(log, report))
    app_compose = (tcb_info or {}).get("app_compose")
    claimed = {
        "info.compose_hash": info.get("compose_hash"),
        "info.tcb_info.compose_hash": (tcb_info or {}).get("compose_hash"),
    }
    _append(
        verdict,
        "eventlog.compose",
        lambda: compose_check(
            log,
            report,
            app_compose if isinstance(app_compose, str) else None,
            {k: v for k, v in claimed.items() if isinstance(v, str)},
        ),
    )
    _append(verdict, "eventlog.info", lambda: info_check(tcb_info, info, log, report))
    return log


def _append(verdict: Verdict, name: str, run: Callable[[], Check]) -> None:
    """Append the check ``run`` makes; if the evidence makes it raise, ``name`` fails."""
    try:
        verdict.checks.append(run())
    except Exception as exc:
        verdict.checks.append(malformed_evidence(name, exc))


def _tcb_info(info: dict[str, Any]) -> dict[str, Any] | None:
    tcb_info = info.get("tcb_info")
    if isinstance(tcb_info, str):
        try:
            tcb_info = parse_json(tcb_info)
        except UntrustedJSONError:
            return None
    return tcb_info if isinstance(tcb_info, dict) else None


def _gpu_checks(
    att: Attestation,
    expected_nonce: bytes | None,
    at: datetime,
    rim_dir: str | Path | None,
    jwks: Any,
    nras: Any,
    verdict: Verdict,
) -> list[GpuMeasurement]:
    """The ``gpu.*`` checks, by the GPU half of the library (``teelog.attestation.gpu``)."""
    if att.gpu_payload is None:
        return []
    from .gpu import verify_gpu_evidence  # the GPU half; imported on first GPU evidence

    gpu = verify_gpu_evidence(
        att.gpu_payload,
        expected_nonce=expected_nonce,
        at=at,
        rim_dir=rim_dir,
        jwks=jwks,
        nras=nras,
    )
    verdict.checks.extend(gpu.checks)
    return list(gpu.gpus)


def _measurements(
    quote: Quote, tdx: TdxResult, log: EventLog | None, gpus: list[GpuMeasurement]
) -> Measurements:
    identity = log.identity() if log is not None else {}
    report = quote.report
    td = report if isinstance(report, TdReport) else None
    return Measurements(
        mrtd=td.mr_td.hex() if td else None,
        rtmr0=td.rtmrs[0].hex() if td else None,
        rtmr1=td.rtmrs[1].hex() if td else None,
        rtmr2=td.rtmrs[2].hex() if td else None,
        rtmr3=td.rtmrs[3].hex() if td else None,
        mr_config_id=td.mr_config_id.hex() if td else None,
        mr_seam=td.mr_seam.hex() if td else None,
        compose_hash=identity.get("compose_hash"),
        app_id=identity.get("app_id"),
        instance_id=identity.get("instance_id"),
        os_image_hash=identity.get("os_image_hash"),
        key_provider=identity.get("key_provider"),
        tcb_status=tdx.tcb_status,
        advisory_ids=tuple(tdx.advisory_ids),
        quote_sha256=hashlib.sha256(quote.raw).hexdigest(),
        gpus=tuple(gpus),
    )


def _collateral(source: CollateralSource) -> Collateral:
    if isinstance(source, Collateral):
        return source
    if source is None:
        return Collateral()
    if isinstance(source, CollateralDoc):
        return Collateral([source])
    return Collateral(source)


def _nonce_bytes(nonce: bytes | str | None) -> bytes | None:
    if nonce is None or isinstance(nonce, bytes):
        return nonce
    text = nonce.strip().removeprefix("0x")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise AttestationInputError(f"nonce is not hex: {nonce!r}") from exc


__all__ = [
    "FORMATS",
    "Attestation",
    "detect_format",
    "load_document",
    "report_attestations",
    "verify_attestation",
    "verify_gpu_payload",
    "verify_quote",
    "verify_report",
]
