"""Entry building (docs/entries.md): canonical JSON, every field present, the size limit."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import rfc8785
from teelog.attestation.verdict import worst_status
from teelog.entries.attestation import attestation_entry, encode_attestation
from teelog.entries.encoding import MAX_ENTRY_BYTES
from teelog.entries.receipt import encode_receipt, receipt_entry

T = datetime(2026, 4, 3, 12, 0, 0, 500000, tzinfo=UTC)


def _verdict(status="verified", detail="ok", role="model", model="m"):
    check_status = {"verified": "pass", "failed": "fail", "warning": "warn"}.get(status, "skip")
    return {
        "role": role, "model": model, "signing_address": "0x" + "ab" * 20, "signing_algo": "ecdsa",
        "status": status,
        "checks": [{"name": "tdx.quote", "status": check_status, "detail": detail}],
        "measurements": {"mrtd": "00" * 48, "gpus": []},
    }


def _entry(attestations):
    return attestation_entry(
        node="node-1", url="https://node.example", format="vllm-proxy", source="poll",
        observed_at=T, verified_at=T, nonce="cd" * 32, attestations=attestations,
        report_blob="ee" * 32, collateral_blobs=["ff" * 32],
    )


class Blobs:
    def __init__(self):
        self.stored: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.stored[digest] = data
        return digest


def test_attestation_entry_has_every_field_and_is_canonical():
    entry = _entry([_verdict(), {"role": "gateway", "status": "failed", "checks": []}])
    data = encode_attestation(entry, Blobs().put)
    assert data == rfc8785.dumps(json.loads(data))
    doc = json.loads(data)
    assert list(doc) == sorted(doc)
    assert doc["type"] == "attestation" and doc["v"] == 1
    assert doc["observed_at"] == "2026-04-03T12:00:00Z"
    assert doc["status"] == "failed"
    gateway = doc["attestations"][1]
    # Fields the report does not carry are null, never omitted.
    assert gateway["model"] is None and gateway["signing_address"] is None
    assert gateway["measurements"] is None
    assert doc["blobs"] == {"report": "ee" * 32, "collateral": ["ff" * 32], "verdict": None}


def test_status_is_the_worst_and_empty_is_unverifiable():
    assert worst_status(["verified", "warning"]) == "warning"
    assert worst_status(["warning", "unverifiable", "verified"]) == "unverifiable"
    assert worst_status(["verified", "failed", "unverifiable"]) == "failed"
    assert worst_status([]) == "unverifiable"
    assert _entry([])["status"] == "unverifiable"


def test_oversized_details_move_to_a_blob_and_the_entry_still_fits():
    blobs = Blobs()
    huge = _verdict(status="failed", detail="x" * 200_000)
    entry = _entry([huge, _verdict()])
    data = encode_attestation(entry, blobs.put)
    assert len(data) <= MAX_ENTRY_BYTES
    doc = json.loads(data)
    assert doc["status"] == "failed"
    assert len(doc["attestations"]) == 2
    assert len(doc["attestations"][0]["checks"][0]["detail"]) == 200
    full = json.loads(blobs.stored[doc["blobs"]["verdict"]])
    assert full[0]["checks"][0]["detail"] == "x" * 200_000


def test_thousands_of_attestations_are_cut_to_fit_but_status_counts_them_all():
    blobs = Blobs()
    many = [_verdict() for _ in range(3000)] + [_verdict(status="failed")]
    data = encode_attestation(_entry(many), blobs.put)
    assert len(data) <= MAX_ENTRY_BYTES
    doc = json.loads(data)
    assert doc["status"] == "failed"  # from the last one, which did not fit
    assert 0 < len(doc["attestations"]) < 3001
    assert len(json.loads(blobs.stored[doc["blobs"]["verdict"]])) == 3001


def test_a_small_entry_writes_no_verdict_blob():
    blobs = Blobs()
    encode_attestation(_entry([_verdict()]), blobs.put)
    assert blobs.stored == {}


def _feed_item():
    return {
        "seq": 42, "chat_id": "chatcmpl-1", "model": "m", "text": "a" * 64 + ":" + "b" * 64,
        "request_sha256": "a" * 64, "response_sha256": "b" * 64,
        "signed_at": "2026-04-03T12:00:00Z",
        "ecdsa": {"signing_address": "0xAb", "signature": "0x01"},
        "ed25519": None,
    }


def test_receipt_entry_shape_and_deterministic_bytes():
    kwargs = dict(
        node="node-1", node_instance="inst", item=_feed_item(), observed_at=T,
        attestation_index=17, status="verified",
        checks=[{"name": "receipt.signature.ecdsa", "status": "pass", "detail": "ok"}],
    )
    a = encode_receipt(receipt_entry(**kwargs))
    assert a == encode_receipt(receipt_entry(**kwargs))
    doc = json.loads(a)
    assert doc["type"] == "receipt" and doc["seq"] == 42
    assert doc["signatures"] == {
        "ecdsa": {"signing_address": "0xAb", "signature": "0x01"}, "ed25519": None,
    }
    assert doc["attestation_index"] == 17
    assert doc["observed_at"] == "2026-04-03T12:00:00Z"

