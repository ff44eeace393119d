"""The ``key_policy`` v1 log entry: the release policy a broker applies to one model version.

A broker appends one for every configured resource when it starts (docs/broker.md), so a
policy change is itself on the log, with the full policy document for anyone to re-evaluate
releases against. The entry carries no time: the same broker, resource, model version and
policy give the same bytes, and the log answers a duplicate with the existing index, so an
unchanged policy is logged once however often the broker restarts. Canonical JSON (RFC 8785),
at most 65,535 bytes.
"""

from __future__ import annotations

from typing import Any

from .encoding import MAX_ENTRY_BYTES, EntryTooLarge, canonical

ENTRY_TYPE = "key_policy"
ENTRY_VERSION = 1


def key_policy_entry(
    *,
    broker: str,
    resource: str,
    model: str | None,
    version: str | None,
    manifest_sha256: str,
    key_id: str,
    policy_sha256: str,
    policy: dict[str, Any],
) -> dict[str, Any]:
    """The entry as a dict (every field present; ``null`` when the manifest lacks it)."""
    return {
        "type": ENTRY_TYPE,
        "v": ENTRY_VERSION,
        "broker": broker,
        "resource": resource,
        "model": {
            "name": model,
            "version": version,
            "manifest_sha256": manifest_sha256,
            "key_id": key_id,
        },
        "policy_sha256": policy_sha256,
        "policy": policy,
    }


def encode_key_policy(entry: dict[str, Any]) -> bytes:
    """Canonical bytes; a policy too large for an entry is refused (it is local input)."""
    data = canonical(entry)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(f"key_policy entry of {entry['resource']!r} is {len(data)} bytes")
    return data
