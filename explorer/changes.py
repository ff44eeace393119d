"""Changes between two logged attestations of a node, by the collector's definition.

``teelog.collector.changes.compare_summaries`` decides what a change is (measurements through
``attestation.diff_measurements``, the signing key, a verdict turning worse, an attestation
appearing or disappearing), so the explorer's timeline and feeds show exactly the changes the
collector alerts on. Log entries are untrusted input: they are first reduced to the documented
shape (docs/entries.md), a field of the wrong type read as ``null``, so that no entry can break
the indexer.
"""

from __future__ import annotations

import json
from typing import Any

from teelog.attestation.measurements import GPU_FIELDS, SCALAR_FIELDS
from teelog.collector.changes import compare_summaries

from .entry_view import STATUSES, attestations_of


def sanitised(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` reduced to the documented measurement fields with the documented types."""
    out: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        value = obj.get(name)
        out[name] = value if isinstance(value, str) else None
    advisories = obj.get("advisory_ids")
    out["advisory_ids"] = (
        [a for a in advisories if isinstance(a, str)] if isinstance(advisories, list) else []
    )
    gpus = []
    raw_gpus = obj.get("gpus")
    for position, gpu in enumerate(raw_gpus if isinstance(raw_gpus, list) else []):
        if not isinstance(gpu, dict):
            continue
        index = gpu.get("index")
        gpus.append(
            {
                "index": index
                if isinstance(index, int) and not isinstance(index, bool)
                else position,
                **{
                    k: gpu.get(k) if isinstance(gpu.get(k), str) else None
                    for k in GPU_FIELDS
                },
            }
        )
    out["gpus"] = gpus
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of an attestation entry (``collector.changes.summary_of``'s shape),
    with every field reduced to its documented type."""

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    def status(value: Any) -> str:
        return value if value in STATUSES else "unverifiable"

    items = []
    for att in attestations_of(doc):
        meas = att.get("measurements")
        items.append(
            {
                "role": text(att.get("role")),
                "model": text(att.get("model")),
                "signing_address": text(att.get("signing_address")),
                "signing_algo": text(att.get("signing_algo")),
                "status": status(att.get("status")),
                "measurements": sanitised(meas) if isinstance(meas, dict) else None,
            }
        )
    return {"status": status(doc.get("status")), "attestations": items}


def changes_between(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for each change between two summaries (values as text or None)."""
    return [(c.field, _text(c.old), _text(c.new)) for c in compare_summaries(old, new)]
