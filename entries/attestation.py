"""The ``attestation`` v1 entry (docs/entries.md): what a node's report said and its verdict.

An attestation entry carries the logged verdict of each attestation of the report
(:func:`attestation_json`, the verdict JSON of ``teelog verify --json`` with every key present),
the entry's ``status`` (the worst of them) and the SHA-256 names of the report and collateral
blobs it was verified from.

An attestation entry built from untrusted input can be too large (a hostile node may send
thousands of attestations, or megabyte check details). Then the full ``attestations`` list goes
into a blob named by ``blobs.verdict`` and the entry keeps shortened check details and as many
attestations as fit, in order; its ``status`` is still the worst over *all* of them.

Readers (the explorer, the monitor) take log entries as untrusted: :func:`attestations_of` and
:func:`measurements_of` return only the items of the documented type, never raising.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from teelog.attestation.times import rfc3339
from teelog.attestation.verdict import worst_status

from .encoding import ENTRY_VERSION, MAX_ENTRY_BYTES, EntryTooLarge, canonical, shorten


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
            check["detail"] = shorten(check.get("detail"))
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


def attestations_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The well-formed (object) items of an attestation entry's ``attestations`` list."""
    items = doc.get("attestations")
    if not isinstance(items, list):
        return []
    return [a for a in items if isinstance(a, dict)]


def measurements_of(att: Mapping[str, Any]) -> dict[str, Any]:
    """An attestation's ``measurements`` object, or ``{}`` when absent or not an object."""
    m = att.get("measurements")
    return m if isinstance(m, dict) else {}
