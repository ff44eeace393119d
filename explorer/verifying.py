"""The verify page's engine: recognise a pasted input and verify it with ``teelog.attestation``.

Inputs recognised (``kind="auto"``), in this order:

- a JSON object with string ``text`` and ``signature``: a signature response or receipt
  (``verify_receipt``); its signer is checked against what this log's attestations say about
  its key (``receipt.signer``, ``attestation.receipt.decide_signer``);
- any other JSON object: an attestation report or bundle (``verify_report``);
- anything else: a bare quote, binary, hex or base64 (``verify_quote``).

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
from teelog.attestation.receipt import SignerRecord, signer_key
from teelog.attestation.times import parse_time, rfc3339

KINDS = ("auto", "report", "quote", "receipt")
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
                doc = json.loads(self.ex.log.entry(node["last_index"]))
                hexes = doc["blobs"]["collateral"]
            except (ValueError, KeyError, TypeError):
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


def verify_bytes(ex: Any, data: bytes, kind: str, at: datetime) -> VerifyOutcome:
    """Verify ``data`` as ``kind`` (see the module docstring); never raises on bad input."""
    outcome = VerifyOutcome(kind=kind, at=rfc3339(at))
    if kind not in KINDS:
        outcome.error = f"kind must be one of {', '.join(KINDS)}"
        return outcome
    doc: Any = None
    if kind in ("auto", "report", "receipt"):
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            if kind != "auto":
                outcome.error = f"the input is not JSON: {exc}"
                return outcome
    if kind == "auto":
        if isinstance(doc, dict):
            is_sig = isinstance(doc.get("text"), str) and isinstance(doc.get("signature"), str)
            kind = "receipt" if is_sig else "report"
        else:
            kind = "quote"
    outcome.kind = kind
    try:
        if kind == "receipt":
            if not isinstance(doc, dict):
                raise AttestationInputError("a signature response is a JSON object")
            address = (
                doc.get("signing_address") if isinstance(doc.get("signing_address"), str) else None
            )
            signers = _signer_records(ex, address)
            verdict = verify_receipt(doc, signers=signers)
            outcome.result = {"status": verdict.status, "attestations": [verdict.to_json()]}
            if not any(r.vouched for r in signers.values()):
                outcome.notes.append("No verified attestation in this log vouches for the signer.")
        elif kind == "report":
            result = verify_report(doc, at=at, collateral=ex.collateral.get())
            outcome.result = result.to_json()
            outcome.notes.append("No nonce was given: freshness of the report cannot be checked.")
        else:
            result = verify_quote(data, at=at, collateral=ex.collateral.get())
            outcome.result = result.to_json()
    except (AttestationInputError, ValueError) as exc:
        outcome.error = f"not a {kind} teelog can read: {exc}"
    return outcome
