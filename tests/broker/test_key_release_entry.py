"""The key_release v1 entry (docs/entries.md): every field present, canonical, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import rfc8785
from teelog.entries.key_release import encode_key_release, key_release_entry

FIELDS = dict(
    broker="b", decided_at=datetime(2026, 4, 15, 12, 0, 0, 123, tzinfo=UTC), insecure=False,
    resource="acme/mk/v1", model="m", version="1", manifest_sha256="aa" * 32,
    key_id="bb" * 32, policy_sha256="cc" * 32, tee="tdx", tee_pubkey_thumbprint="t",
    nonce="n", quote_sha256="dd" * 32, report_data="ee" * 64, evidence_sha256="ff" * 32,
    claims={"tee": "tdx"}, measurements={"mrtd": "00"}, evidence_status="verified",
)


def test_a_denial_names_its_first_failed_check_as_reason_and_keeps_every_field():
    entry = key_release_entry(decision="denied", failed=[
        {"name": "policy.conditions", "detail": "x"}, {"name": "policy.debug", "detail": "y"}],
        response_sha256=None, **FIELDS)
    assert entry["reason"] == "policy.conditions"
    assert entry["decided_at"] == "2026-04-15T12:00:00Z"
    assert set(entry) == {"type", "v", "broker", "decided_at", "decision", "reason", "insecure",
                          "resource", "model", "policy_sha256", "requester", "evidence_status",
                          "failed", "response_sha256"}
    assert set(entry["model"]) == {"name", "version", "manifest_sha256", "key_id"}
    assert encode_key_release(entry) == rfc8785.dumps(entry)


def test_a_release_cannot_carry_failed_checks():
    with pytest.raises(ValueError):
        key_release_entry(decision="released", failed=[{"name": "x", "detail": ""}],
                          response_sha256="00" * 32, **FIELDS)
    with pytest.raises(ValueError):
        key_release_entry(decision="maybe", failed=[], response_sha256=None, **FIELDS)


def test_a_huge_entry_is_shortened_to_fit_a_bundle():
    failed = [{"name": f"gpu.nonce[{i}]", "detail": "z" * 5000} for i in range(20)]
    fields = {**FIELDS, "measurements": {"key_provider": "k" * 70_000}}
    entry = key_release_entry(decision="denied", failed=failed, response_sha256=None, **fields)
    data = encode_key_release(entry)
    assert len(data) <= 65_535
    assert b'"measurements":null' in data and b"gpu.nonce[19]" in data
