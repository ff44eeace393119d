"""Log entries the collector writes: ``attestation`` v1 and ``receipt`` v1 (docs/entries.md).

Entries are canonical JSON (RFC 8785, the ``rfc8785`` package) and at most 65,535 bytes
(C2SP tlog-tiles entry bundles). Evidence lives in the blob store, committed to by SHA-256.

An attestation entry built from untrusted input can be too large (a hostile node may send
thousands of attestations, or megabyte check details). Then the full ``attestations`` list goes
into a blob named by ``blobs.verdict`` and the entry keeps shortened check details and as many
attestations as fit, in order; its ``status`` is still the worst over *all* of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

MAX_ENTRY_BYTES = 65_535
ENTRY_VERSION = 1
# Check details longer than this are cut when an entry must be shortened (``…`` marks the cut).
SHORT_DETAIL = 200

_STATUS_ORDER = ("verified", "warning", "unverifiable", "failed")  # worst last


class EntryTooLarge(ValueError):
    """An entry that cannot be made to fit 65,535 bytes (only possible for bad local input)."""


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC, second precision, ``Z`` suffix (docs/entries.md "Times")."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 time (``Z`` or offset; no zone means UTC) → aware UTC."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``obj``."""
    return rfc8785.dumps(obj)


def worst_status(statuses: Iterable[str]) -> str:
    """The worst status (``failed`` > ``unverifiable`` > ``warning`` > ``verified``); none →
    ``unverifiable`` (docs/entries.md: an empty list is ``unverifiable``)."""
    worst = -1
    for status in statuses:
        worst = max(worst, _STATUS_ORDER.index(status) if status in _STATUS_ORDER else 3)
    return _STATUS_ORDER[worst] if worst >= 0 else "unverifiable"


def is_worse(old: str | None, new: str) -> bool:
    """Whether ``new`` is a worse status than ``old`` (unknown ``old``: never worse)."""
    if old not in _STATUS_ORDER:
        return False
    return _STATUS_ORDER.index(new) > _STATUS_ORDER.index(old)


def attestation_json(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """One element of an entry's ``attestations``: a verdict's JSON with every key present."""
    return {
        "role": verdict.get("role"),
        "model": verdict.get("model"),
        "signing_address": verdict.get("signing_address"),
        "signing_algo": verdict.get("signing_algo"),
        "status": verdict.get("status", "unverifiable"),
        "checks": [
            {"name": c.get("name"), "status": c.get("status"), "detail": c.get("detail", "")}
            for c in verdict.get("checks", [])
        ],
        "measurements": verdict.get("measurements"),
    }


def attestation_entry(
    *,
    node: str,
    url: str | None,
    format: str | None,
    source: str,
    observed_at: datetime,
    verified_at: datetime,
    nonce: str | None,
    attestations: list[dict[str, Any]],
    report_blob: str,
    collateral_blobs: list[str],
) -> dict[str, Any]:
    """The ``attestation`` v1 entry as a dict (docs/entries.md); see :func:`encode_attestation`."""
    items = [attestation_json(v) for v in attestations]
    return {
        "type": "attestation",
        "v": ENTRY_VERSION,
        "node": node,
        "url": url,
        "format": format,
        "source": source,
        "observed_at": rfc3339(observed_at),
        "verified_at": rfc3339(verified_at),
        "nonce": nonce,
        "status": worst_status(a["status"] for a in items),
        "attestations": items,
        "blobs": {"report": report_blob, "collateral": list(collateral_blobs), "verdict": None},
    }


def _shorten(text: Any) -> Any:
    if isinstance(text, str) and len(text) > SHORT_DETAIL:
        return text[: SHORT_DETAIL - 1] + "…"
    return text


def encode_attestation(entry: dict[str, Any], put_blob: Callable[[bytes], str]) -> bytes:
    """Canonical bytes of ``entry``, shortened to fit :data:`MAX_ENTRY_BYTES` if needed.

    When shortening, the full ``attestations`` list is stored with ``put_blob`` (canonical
    JSON) and named in ``blobs.verdict``; check details are cut to :data:`SHORT_DETAIL`
    characters, then trailing attestations are dropped until the entry fits.
    """
    data = canonical(entry)
    if len(data) <= MAX_ENTRY_BYTES:
        return data
    short = copy.deepcopy(entry)
    short["blobs"]["verdict"] = put_blob(canonical(entry["attestations"]))
    for item in short["attestations"]:
        for check in item.get("checks", []):
            check["detail"] = _shorten(check.get("detail"))
    data = canonical(short)
    if len(data) > MAX_ENTRY_BYTES:
        # RFC 8785 writes a list as "[" + ",".join(items) + "]", so the size of a prefix of the
        # list is known without re-encoding the entry for every candidate length.
        items = short["attestations"]
        short["attestations"] = []
        room = MAX_ENTRY_BYTES - len(canonical(short))
        keep, used = 0, 0
        for item in items:
            size = len(canonical(item)) + (1 if keep else 0)
            if used + size > room:
                break
            keep, used = keep + 1, used + size
        short["attestations"] = items[:keep]
        data = canonical(short)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(f"attestation entry of node {entry['node']!r} is {len(data)} bytes")
    return data


def receipt_entry(
    *,
    node: str,
    node_instance: str,
    item: Mapping[str, Any],
    observed_at: datetime,
    attestation_index: int | None,
    status: str,
    checks: list[dict[str, Any]],
    named_index: int | None = None,
) -> dict[str, Any]:
    """The ``receipt`` v1 entry (docs/entries.md) for one item of a node's receipts feed."""

    def signature(algo: str) -> dict[str, Any] | None:
        sig = item.get(algo)
        if not isinstance(sig, Mapping):
            return None
        return {"signing_address": sig["signing_address"], "signature": sig["signature"]}

    return {
        "type": "receipt",
        "v": ENTRY_VERSION,
        "node": node,
        "node_instance": node_instance,
        "seq": item["seq"],
        "chat_id": item["chat_id"],
        "model": item.get("model"),
        "text": item["text"],
        "request_sha256": item["request_sha256"],
        "response_sha256": item["response_sha256"],
        "signed_at": item["signed_at"],
        "observed_at": rfc3339(observed_at),
        "signatures": {"ecdsa": signature("ecdsa"), "ed25519": signature("ed25519")},
        "attestation_index": attestation_index,
        "named_index": named_index,
        "status": status,
        "checks": [
            {"name": c["name"], "status": c["status"], "detail": _shorten(c.get("detail", ""))}
            for c in checks
        ],
    }


def encode_receipt(entry: dict[str, Any]) -> bytes:
    """Canonical bytes of a receipt entry (bounded by the feed's field limits)."""
    data = canonical(entry)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(f"receipt entry of node {entry['node']!r} is {len(data)} bytes")
    return data
