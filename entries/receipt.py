"""The ``receipt`` v1 entry (docs/entries.md): one signed response from a node's receipts feed.

The entry keeps the node's signed text and signatures as the node published them, the
collector's checks of those signatures and of the signer, ``attestation_index``, the log
index of the attestation that vouches for the signing key (``null`` when none does), and
``named_index``, the latest attestation that named it whatever its status
(``attestation.receipt.decide_signer`` decides both).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from teelog.attestation.times import rfc3339

from .encoding import ENTRY_VERSION, encode_bounded, shorten


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
            {"name": c["name"], "status": c["status"], "detail": shorten(c.get("detail", ""))}
            for c in checks
        ],
    }


def encode_receipt(entry: dict[str, Any]) -> bytes:
    """Canonical bytes of a receipt entry (bounded by the feed's field limits)."""
    return encode_bounded(entry)


def receipt_index_field(doc: Mapping[str, Any], name: str) -> int | None:
    """A receipt entry's ``attestation_index`` or ``named_index``, if a non-negative integer."""
    value = doc.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def receipt_attestation_index(doc: Mapping[str, Any]) -> int | None:
    """The ``attestation_index`` of a receipt entry, if it is a non-negative integer."""
    return receipt_index_field(doc, "attestation_index")


def receipt_signers(doc: Mapping[str, Any]) -> list[str]:
    """The signing addresses of a receipt entry's signatures, as they are written."""
    sigs = doc.get("signatures")
    if not isinstance(sigs, dict):
        return []
    return [
        s["signing_address"]
        for s in sigs.values()
        if isinstance(s, dict) and isinstance(s.get("signing_address"), str)
    ]
