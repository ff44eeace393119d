"""Change detection: what differs between a node's attestation and its previous one.

A change is any of (issue 5, "Measurement changes and alerts"):

- a measurement (``attestation.diff_measurements``, the one shared definition: registers,
  compose hash, OS image, key provider, TCB status and advisories, GPU driver and VBIOS);
- the signing key (address compared case-insensitively);
- a verdict turning worse (``verified`` → ``warning`` → ``unverifiable`` → ``failed``);
- an attestation that appears or disappears (a model added to or removed from a gateway).

Attestations of the two entries are paired by role and model (and their order among equals).
A field is named ``<role>[<model>].<path>`` (``model[openai/gpt-oss-120b].compose_hash``), or
``<role>.<path>`` when the attestation names no model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from teelog.attestation.measurements import Change, Measurements, diff_measurements

from .entries import is_worse


def summary_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of an ``attestation`` entry (no checks, no times, no nonce)."""
    return {
        "status": entry["status"],
        "attestations": [
            {
                "role": a.get("role"),
                "model": a.get("model"),
                "signing_address": a.get("signing_address"),
                "signing_algo": a.get("signing_algo"),
                "status": a.get("status"),
                "measurements": a.get("measurements"),
            }
            for a in entry["attestations"]
        ],
    }


def _keyed(attestations: list[dict[str, Any]]) -> dict[tuple[Any, Any, int], dict[str, Any]]:
    out: dict[tuple[Any, Any, int], dict[str, Any]] = {}
    counts: dict[tuple[Any, Any], int] = {}
    for item in attestations:
        base = (item.get("role"), item.get("model"))
        n = counts.get(base, 0)
        counts[base] = n + 1
        out[(*base, n)] = item
    return out


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
