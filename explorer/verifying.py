"""The verify page's engine: recognise a pasted input and verify it with ``teelog.attestation``.

What the input is comes from ``teelog.attestation.inputs.detect_input_kind``, the one
detection ``teelog verify``, the importer and the collector use too; a ``kind`` other than
``auto`` must agree with it (``quote`` forces the bytes to be read as a quote):

- a signature response (``receipt``, ``verify_receipt``); its signer is checked against
  what this log's attestations say about its key (``receipt.signer``,
  ``attestation.receipt.decide_signer``) (a receipt *entry* is
  refused with a pointer to its entry page, which checks its proof);
- a report or bundle (``report``, ``verify_report``);
- a bare NVIDIA GPU payload (``gpu``, ``verify_gpu_payload``; no nonce, so ``gpu.nonce``
  cannot pass);
- anything else that is not JSON: a bare quote, binary, hex or base64 (``verify_quote``).

A logged receipt's tlog-proof is not checked here: the entry page checks it in the browser,
and ``teelog verify`` offline.

Work per request is bounded (the page says so): at most :data:`MAX_ATTESTATIONS` attestations
per upload and :data:`MAX_GPUS` GPUs per attestation are verified, every check detail is cut
to :data:`MAX_DETAIL` characters and the verdict JSON to :data:`MAX_RENDERED` bytes; input
past a cap is refused with a message, never half-verified.

Nothing is logged or stored. Collateral comes from what this explorer already holds: the
collateral blobs of each node's latest attestation and the cache directory
``<data>/collateral`` (plus a PCCS/PCS when ``TEELOG_PCCS_URL`` is set); collateral that is
not valid at the verification time makes the quote check fail or skip, as the verdict says.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from teelog.attestation import (
    AttestationInputError,
    Collateral,
    load_collateral,
    verify_quote,
    verify_receipt,
    verify_report,
)
from teelog.attestation.inputs import DetectedInput, detect_input_kind, parse_json
from teelog.attestation.receipt import SignerRecord, signer_key
from teelog.attestation.report import report_attestations, verify_gpu_payload
from teelog.attestation.times import parse_time, rfc3339

KINDS = ("auto", "report", "quote", "receipt", "gpu")
MAX_ATTESTATIONS = 16  # a NEAR bundle has a gateway and a few models
MAX_GPUS = 16  # per attestation; real nodes have 8
MAX_DETAIL = 2000  # characters of one check's detail shown
MAX_RENDERED = 1 << 20  # bytes of verdict JSON one request renders
LIMITS = (
    f"at most {MAX_ATTESTATIONS} attestations per upload and {MAX_GPUS} GPUs per attestation; "
    f"check details are cut to {MAX_DETAIL} characters and a verdict is rendered up to "
    f"{MAX_RENDERED // 1024} KiB"
)
_COLLATERAL_TTL = 60.0  # seconds a process keeps its collateral set before re-reading it


@dataclass(slots=True)
class VerifyOutcome:
    """The verify page's answer: the kind recognised, the verdict JSON, or why none."""

    kind: str
    at: str
    result: dict[str, Any] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class CollateralPool:
    """The collateral this explorer holds, gathered from the log's blobs, refreshed per TTL."""

    def __init__(self, ex: Any) -> None:
        self.ex = ex
        self._lock = threading.Lock()
        self._loaded: tuple[float, Collateral] | None = None

    def get(self) -> Collateral:
        with self._lock:
            now = time.monotonic()
            if self._loaded is None or now - self._loaded[0] > _COLLATERAL_TTL:
                self._loaded = (now, self._gather())
            return self._loaded[1]

    def _gather(self) -> Collateral:
        cfg = self.ex.config
        source = Collateral(pccs_url=cfg.pccs_url or None, cache_dir=cfg.data_dir / "collateral")
        for node in self.ex.store.nodes()[:200]:
            if node["last_index"] is None:
                continue
            try:
                doc = parse_json(self.ex.log.entry(node["last_index"]))
                hexes = doc["blobs"]["collateral"]
            except (ValueError, KeyError, TypeError):  # UntrustedJSONError is a ValueError
                continue
            for h in hexes if isinstance(hexes, list) else []:
                try:
                    source.add(load_collateral(self.ex.log.blobs.get(h)))
                except Exception:  # a blob we cannot read or parse is simply not used
                    continue
        return source


def parse_at(text: str | None) -> datetime:
    """The verification time: RFC 3339 or Unix seconds (``attestation.times.parse_time``, as
    ``teelog verify --at``), or now when empty."""
    if not text or not text.strip():
        return datetime.now(UTC).replace(microsecond=0)
    return parse_time(text)


def _signer_records(ex: Any, address: str | None) -> dict[str, SignerRecord]:
    """What this log's attestations say about ``address`` (``Store.signer_attestations``), as
    ``verify_receipt`` takes it: empty when no attestation names it."""
    if not address:
        return {}
    found = ex.store.signer_attestations(address)
    if found["named"] is None:
        return {}
    named_index, named_status = found["named"]
    vouched_index, vouched_status = found["vouched"] or (None, None)
    return {
        signer_key(address): SignerRecord(
            named_status=named_status or "unverifiable",
            named_index=named_index,
            vouched_status=vouched_status,
            vouched_index=vouched_index,
        )
    }


class _Refused(Exception):
    """Input the page does not verify; the message is shown (HTTP 400)."""


def _gpu_count(payload: Any) -> int:
    """How many GPUs an ``nvidia_payload`` lists (0 when it cannot be decoded: the verifier
    then fails it, with one check)."""
    from teelog.attestation.gpu import GpuEvidenceError, decode_nvidia_payload

    if payload is None:
        return 0
    try:
        decoded = decode_nvidia_payload(payload, strict=False)
    except (GpuEvidenceError, ValueError):
        return 0
    return len(decoded.evidence) + len(decoded.rejected)


def _check_work(detected: DetectedInput) -> None:
    """Refuse input beyond the caps of the module docstring before verifying any of it."""
    if detected.kind == "gpu":
        gpus = [_gpu_count(detected.doc)]
    elif detected.kind in ("report", "bundle"):
        _, atts = report_attestations(detected.doc)
        if len(atts) > MAX_ATTESTATIONS:
            raise _Refused(
                f"the upload holds {len(atts)} attestations; this page verifies at most "
                f"{MAX_ATTESTATIONS} per upload (teelog verify has no such limit)"
            )
        gpus = [_gpu_count(a.gpu_payload) for a in atts]
    else:
        return
    if max(gpus, default=0) > MAX_GPUS:
        raise _Refused(
            f"an attestation lists {max(gpus)} GPUs; this page verifies at most {MAX_GPUS} "
            "per attestation (teelog verify has no such limit)"
        )


def _bounded(result: dict[str, Any]) -> dict[str, Any]:
    """The verdict JSON with every check detail cut to :data:`MAX_DETAIL` characters."""
    for att in result.get("attestations", []):
        for check in att.get("checks", []):
            detail = check.get("detail", "")
            if len(detail) > MAX_DETAIL:
                check["detail"] = detail[: MAX_DETAIL - 1] + "…"
    size = len(json.dumps(result, ensure_ascii=False).encode("utf-8", "replace"))
    if size > MAX_RENDERED:
        raise _Refused(
            f"the verdict would be {size} bytes; this page renders at most {MAX_RENDERED}"
        )
    return result


def _detect(data: bytes, kind: str) -> DetectedInput:
    """What ``data`` is, agreeing with the ``kind`` the user chose (see the module docstring)."""
    if kind == "quote":
        return DetectedInput("quote", data)
    try:
        detected = detect_input_kind(data)
    except AttestationInputError as exc:
        given = "" if kind == "auto" else f"kind={kind}, but "
        raise _Refused(f"{given}not an input teelog can read: {exc}") from exc
    found = detected.kind
    if found == "proof":
        raise _Refused(
            "a logged receipt's tlog-proof: open its entry page, which checks the proof in "
            "your browser, or run teelog verify FILE --vkey KEY offline"
        )
    wanted = {"report": ("report", "bundle"), "receipt": ("receipt",), "gpu": ("gpu",)}
    if kind != "auto" and found not in wanted[kind]:
        what = "a JSON " + type(detected.doc).__name__ if found == "gpu" else f"a {found}"
        raise _Refused(f"kind={kind}, but the input is {what}")
    return detected


def verify_bytes(ex: Any, data: bytes, kind: str, at: datetime) -> VerifyOutcome:
    """Verify ``data`` as ``kind`` (see the module docstring); never raises on bad input."""
    outcome = VerifyOutcome(kind=kind, at=rfc3339(at))
    if kind not in KINDS:
        outcome.error = f"kind must be one of {', '.join(KINDS)}"
        return outcome
    try:
        detected = _detect(data, kind)
        outcome.kind = "report" if detected.kind == "bundle" else detected.kind
        _check_work(detected)
        outcome.result = _bounded(_verify(ex, detected, at, outcome))
    except _Refused as exc:
        outcome.error = str(exc)
    except (AttestationInputError, ValueError) as exc:
        outcome.error = f"not a {outcome.kind} teelog can read: {exc}"
    return outcome


def _verify(ex: Any, detected: DetectedInput, at: datetime, outcome: VerifyOutcome) -> Any:
    doc = detected.doc
    if detected.kind == "receipt":
        if doc.get("type") == "receipt":
            raise _Refused(
                "a receipt entry of a log: its entry page in that log's explorer shows it "
                "and checks its proof; here, paste the node's signature response"
            )
        claimed = doc.get("signing_address")
        address = claimed if isinstance(claimed, str) else None
        signers = _signer_records(ex, address)
        verdict = verify_receipt(doc, signers=signers)
        if not any(r.vouched for r in signers.values()):
            outcome.notes.append("No verified attestation in this log vouches for the signer.")
        return {"status": verdict.status, "attestations": [verdict.to_json()]}
    if detected.kind in ("report", "bundle"):
        outcome.notes.append("No nonce was given: freshness of the report cannot be checked.")
        return verify_report(doc, at=at, collateral=ex.collateral.get()).to_json()
    if detected.kind == "gpu":
        outcome.notes.append("No nonce was given: the GPU evidence is not bound to a request.")
        return verify_gpu_payload(doc, nonce=None, at=at).to_json()
    return verify_quote(detected.data, at=at, collateral=ex.collateral.get()).to_json()
