"""The change rule: what differs between a node's attestation entry and its previous one.

This is the one definition: the collector alerts on these changes, the explorer's timeline and
feeds show them, and the monitor alerts on them.

A change is any of (issue 5, "Measurement changes and alerts"):

- a measurement (``attestation.diff_measurements``, the one shared definition: registers,
  compose hash, OS image, key provider, TCB status and advisories, GPU driver and VBIOS);
- the signing key (address compared case-insensitively);
- a verdict turning worse (``verified`` → ``warning`` → ``unverifiable`` → ``failed``);
- an attestation that appears or disappears (a model added to or removed from a gateway).

Attestations of the two entries are paired by role and model (and their order among equals).
A field is named ``<role>[<model>].<path>`` (``model[openai/gpt-oss-120b].compose_hash``), or
``<role>.<path>`` when the attestation names no model.

Entries are read as untrusted input: :func:`summary_of` first reduces an entry to the
documented shape (docs/entries.md), a field of the wrong type read as ``null``, so that no
entry in the log can break a reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from teelog.attestation.measurements import (
    GPU_FIELDS,
    SCALAR_FIELDS,
    Change,
    Measurements,
    diff_measurements,
)
from teelog.attestation.verdict import STATUSES, is_worse

from .attestation import attestations_of


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


def summary_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable part of an attestation entry (no checks, no times, no nonce), with every
    field reduced to its documented type."""

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


def _keyed(attestations: list[dict[str, Any]]) -> dict[tuple[Any, Any, int], dict[str, Any]]:
    out: dict[tuple[Any, Any, int], dict[str, Any]] = {}
    counts: dict[tuple[Any, Any], int] = {}
    for item in attestations:
        base = (item.get("role"), item.get("model"))
        n = counts.get(base, 0)
        counts[base] = n + 1
        out[(*base, n)] = item
    return out


def labelled(attestations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The attestations of an entry by the label they are compared under (``role[model]``, with
    ``#n`` for the n-th of the same role and model): the pairing of :func:`compare_summaries`,
    which the monitor uses too."""
    return {_label(key): item for key, item in _keyed(attestations).items()}


def _label(key: tuple[Any, Any, int]) -> str:
    role, model, n = key
    label = str(role or "attestation")
    if model:
        label += f"[{model}]"
    if n:
        label += f"#{n + 1}"
    return label


def _identity(item: dict[str, Any]) -> dict[str, Any]:
    return {"signing_address": item.get("signing_address"), "status": item.get("status")}


def _same_address(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def _pair_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    m_old, m_new = old.get("measurements"), new.get("measurements")
    if isinstance(m_old, dict) and isinstance(m_new, dict):
        diff = diff_measurements(Measurements.from_json(m_old), Measurements.from_json(m_new))
        for change in diff:
            yield Change(f"{label}.{change.field}", change.old, change.new)
    elif (m_old is None) != (m_new is None):
        yield Change(f"{label}.measurements", m_old, m_new)
    if not _same_address(old.get("signing_address"), new.get("signing_address")):
        yield Change(
            f"{label}.signing_address", old.get("signing_address"), new.get("signing_address")
        )
    if is_worse(old.get("status"), new.get("status") or "unverifiable"):
        yield Change(f"{label}.status", old.get("status"), new.get("status"))


def compare_summaries(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new`` (summaries from :func:`summary_of`), in order."""
    a, b = _keyed(old.get("attestations", [])), _keyed(new.get("attestations", []))
    changes: list[Change] = []
    for key in list(a) + [k for k in b if k not in a]:
        label = _label(key)
        if key not in b:
            changes.append(Change(label, _identity(a[key]), None))
        elif key not in a:
            changes.append(Change(label, None, _identity(b[key])))
        else:
            changes.extend(_pair_changes(label, a[key], b[key]))
    if not a and not b and is_worse(old.get("status"), new.get("status") or "unverifiable"):
        changes.append(Change("status", old.get("status"), new.get("status")))
    return changes


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def changes_between(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for each change between two summaries (values as text or None)."""
    return [(c.field, _text(c.old), _text(c.new)) for c in compare_summaries(old, new)]
