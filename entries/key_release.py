"""The ``key_release`` v1 log entry: one decision of the key broker (docs/entries.md).

Every release and every denial is appended before the broker answers, and a release is sent
only once its entry is in a signed checkpoint (issue 11 "Log before release"). The entry
names what was asked for (resource, model version, manifest digest, key id), by whom (TEE
type, RFC 7638 thumbprint of the tee-pubkey, nonce, quote SHA-256, report_data, the claims the
policy saw, the measurements), under which policy (its digest) and with what outcome (the
evidence verdict's status and every failed check). It never holds the key, the JWE or
anything from which the key follows; ``response_sha256`` is the digest of the JWE sent.

Canonical JSON (RFC 8785), at most 65,535 bytes (C2SP tlog-tiles entry bundles): check details
are cut to 200 characters when an entry would be larger, then ``measurements`` is dropped
(``null``; the evidence itself is in the blob store, named by ``evidence_sha256``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from teelog.attestation.times import rfc3339

from .encoding import MAX_ENTRY_BYTES, SHORT_DETAIL, EntryTooLarge, canonical, shorten

ENTRY_TYPE = "key_release"
ENTRY_VERSION = 1
DECISIONS = ("released", "denied")


def key_release_entry(
    *,
    broker: str,
    decided_at: datetime,
    decision: str,
    insecure: bool,
    resource: str | None,
    model: str | None,
    version: str | None,
    manifest_sha256: str | None,
    key_id: str | None,
    policy_sha256: str | None,
    tee: str | None,
    tee_pubkey_thumbprint: str | None,
    nonce: str | None,
    quote_sha256: str | None,
    report_data: str | None,
    evidence_sha256: str | None,
    claims: dict[str, Any] | None,
    measurements: dict[str, Any] | None,
    evidence_status: str | None,
    failed: list[dict[str, str]],
    response_sha256: str | None,
) -> dict[str, Any]:
    """The entry as a dict; fields that are unknown are ``null``, never omitted."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    if decision == "released" and failed:
        raise ValueError("a release cannot have failed checks")
    return {
        "type": ENTRY_TYPE,
        "v": ENTRY_VERSION,
        "broker": broker,
        "decided_at": rfc3339(decided_at),
        "decision": decision,
        "reason": failed[0]["name"] if failed else None,
        "insecure": insecure,
        "resource": resource,
        "model": {
            "name": model,
            "version": version,
            "manifest_sha256": manifest_sha256,
            "key_id": key_id,
        },
        "policy_sha256": policy_sha256,
        "requester": {
            "tee": tee,
            "tee_pubkey_thumbprint": tee_pubkey_thumbprint,
            "nonce": nonce,
            "quote_sha256": quote_sha256,
            "report_data": report_data,
            "evidence_sha256": evidence_sha256,
            "claims": claims,
            "measurements": measurements,
        },
        "evidence_status": evidence_status,
        "failed": [{"name": f["name"], "detail": f["detail"]} for f in failed],
        "response_sha256": response_sha256,
    }


def encode_key_release(entry: dict[str, Any]) -> bytes:
    """Canonical bytes of ``entry``; failed-check details are shortened if it is too large."""
    data = canonical(entry)
    if len(data) <= MAX_ENTRY_BYTES:
        return data
    short = dict(entry)
    short["failed"] = [
        {"name": f["name"][:SHORT_DETAIL],
         "detail": shorten(f["detail"])}
        for f in entry["failed"]
    ]
    data = canonical(short)
    if len(data) > MAX_ENTRY_BYTES:
        # Untrusted event-log or GPU strings can be large; the claims stay, being what the
        # policy decided on, and the full evidence is in the blob store.
        short["requester"] = {**short["requester"], "measurements": None}
        data = canonical(short)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(f"key_release entry is {len(data)} bytes even shortened")
    return data
