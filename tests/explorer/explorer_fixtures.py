"""Build logs of real data for the explorer's tests.

The NEAR AI bundle (tests/data/gpu/nearai-cloud-gpt-oss-120b-2026-04) is imported as
``teelog import`` does (``collector.importer``), verified at its pinned time with its archived
collateral (tests/data/tdx/README.md); its verdict is also computed directly with
``teelog.attestation.verify_report`` so tests can compare. Variants (changed measurements,
hostile evidence) are appended with the collector's own entry functions
(``teelog.entries``), their report and collateral in the blob store. Receipts are the real
signature samples from the NEAR AI docs (tests/data/reports/nearai_docs_signature_samples.json),
verified with ``verify_receipt``, plus
receipts signed here with a throwaway key (their signer is vouched for by no attestation, and
their entries say so).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from teelog.attestation import Collateral, verify_receipt, verify_report
from teelog.entries.attestation import attestation_entry, encode_attestation
from teelog.entries.encoding import canonical
from teelog.entries.receipt import encode_receipt, receipt_entry
from teelog.log import Log

DATA = Path(__file__).resolve().parents[1] / "data"
BUNDLE = DATA / "gpu" / "nearai-cloud-gpt-oss-120b-2026-04" / "attestation_report.json"
COLLATERAL = [
    DATA / "tdx" / "dcapqvl_tdx_v5.collateral.json",  # FMSPC 90C06F000000 (model quote)
    DATA / "tdx" / "nearmpc_2026_tdx_v4.collateral.json",  # FMSPC B0C06F000000 (gateway)
]
SIGNATURES = DATA / "reports" / "nearai_docs_signature_samples.json"
# The model attestation's quote verifies UpToDate with the first collateral at this time.
PINNED_AT = datetime.fromtimestamp(1773200000, UTC)
BUNDLE_NONCE = "deadbeef00000000000000000000000000000000000000000000000000000001"
NODE = "nearai-gpt-oss-120b"
MODEL_ADDRESS = "0x56d070df1c6be444b007839ef9cf67cec7c12b8b"
# A throwaway secp256k1 key for receipts made in tests (never a real node's).
TEST_KEY = "0x" + "4c" * 32


@dataclass
class Built:
    log: Log
    data_dir: Path
    attestation_indexes: list[int] = field(default_factory=list)
    receipt_indexes: list[int] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None


def verified_bundle(doc: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any], Any]:
    raw = BUNDLE.read_bytes()
    if doc is not None:
        raw = json.dumps(doc).encode()
    result = verify_report(
        raw, nonce=BUNDLE_NONCE, at=PINNED_AT, collateral=Collateral.from_files(COLLATERAL)
    )
    return raw, json.loads(raw), result


def append_attestation(
    log: Log,
    *,
    node: str = NODE,
    raw: bytes,
    result: Any,
    observed_at: datetime = PINNED_AT,
    mutate: Any = None,
) -> int:
    """Append one attestation entry (optionally ``mutate``-d before encoding)."""
    report_blob = log.blobs.put(raw)
    collateral_blobs = [log.blobs.put(b) for b in result.collateral_documents().values()]
    entry = attestation_entry(
        node=node,
        url="https://cloud-api.near.ai/",
        format="near-gateway",
        source="import",
        observed_at=observed_at,
        verified_at=PINNED_AT,
        nonce=BUNDLE_NONCE,
        attestations=[v.to_json() for v in result.attestations],
        report_blob=report_blob,
        collateral_blobs=collateral_blobs,
    )
    if mutate is not None:
        mutate(entry)
    return log.append(encode_attestation(entry, log.blobs.put))


def import_bundle(log: Log, node: str = NODE) -> int:
    """Import the NEAR AI bundle the way ``teelog import`` does (``collector.importer``)."""
    from teelog.collector.importer import import_reports
    from teelog.collector.models import create_tables
    from teelog.collector.poll import Recorder
    from teelog.collector.verification import report_verifier
    from teelog.collector.webhooks import WebhookOutbox

    create_tables(log.engine)
    recorder = Recorder(
        log,
        report_verifier(Collateral.from_files(COLLATERAL)),
        WebhookOutbox(log.engine, (), clock=lambda: PINNED_AT),
    )
    (imported,) = import_reports(
        recorder, [BUNDLE], observed_at=PINNED_AT, at=PINNED_AT, node=node, nonce=BUNDLE_NONCE
    )
    return imported.recorded.index


def sign_text(text: str, key: str = TEST_KEY) -> tuple[str, str]:
    """EIP-191 personal_sign of ``text``: (address, 0x signature)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    acct = Account.from_key(key)
    signed = acct.sign_message(encode_defunct(text=text))
    return acct.address, "0x" + signed.signature.hex().removeprefix("0x")


def make_receipt(
    seq: int,
    *,
    node: str = NODE,
    attestation_index: int | None = None,
    named_index: int | None = None,
    signers: dict[str, Any] | None = None,
) -> dict:
    """A receipt entry signed with the test key; ``signers`` (``attestation.receipt``
    ``SignerRecord`` by key) decides its ``receipt.signer`` as the collector would."""
    request = f"request {seq}".encode()
    response = f"response {seq}".encode()
    text = f"{hashlib.sha256(request).hexdigest()}:{hashlib.sha256(response).hexdigest()}"
    address, signature = sign_text(text)
    sig = {
        "text": text,
        "signature": signature,
        "signing_address": address,
        "signing_algo": "ecdsa",
    }
    verdict = verify_receipt(sig, request=request, response=response, signers=signers)
    item = {
        "seq": seq,
        "chat_id": f"chatcmpl-test-{seq}",
        "model": "openai/gpt-oss-120b",
        "text": text,
        "request_sha256": text.split(":")[0],
        "response_sha256": text.split(":")[1],
        "signed_at": "2026-03-11T03:40:00Z",
        "ecdsa": {"signing_address": address, "signature": signature},
    }
    return receipt_entry(
        node=node,
        node_instance="journal-test",
        item=item,
        observed_at=PINNED_AT,
        attestation_index=attestation_index,
        named_index=named_index,
        status=verdict.status,
        checks=[c.to_json() for c in verdict.checks],
    )


def key_address(key: str = TEST_KEY) -> str:
    """The Ethereum address of the test key."""
    from eth_account import Account

    return Account.from_key(key).address


def docs_receipts() -> list[dict[str, Any]]:
    """Receipt entries for the real signature samples of the NEAR AI docs."""
    samples = json.loads(SIGNATURES.read_text())["samples"]
    out = []
    for n, sample in enumerate(samples):
        sig = sample["signature_response"]
        verdict = verify_receipt(sig)
        req, _, resp = sig["text"].rpartition(":")
        item = {
            "seq": 1000 + n,
            "chat_id": f"chatcmpl-docs-{sample['id']}",
            "model": None,
            "text": sig["text"],
            "request_sha256": req,
            "response_sha256": resp,
            "signed_at": "2026-03-11T03:45:00Z",
            "ecdsa": {"signing_address": sig["signing_address"], "signature": sig["signature"]},
        }
        out.append(
            receipt_entry(
                node=NODE,
                node_instance="journal-docs",
                item=item,
                observed_at=PINNED_AT,
                attestation_index=None,
                status=verdict.status,
                checks=[c.to_json() for c in verdict.checks],
            )
        )
    return out


def build_log(data_dir: Path, *, receipts: int = 3, database_url: str | None = None) -> Built:
    """A log with the NEAR AI bundle, then ``receipts`` test receipts, then the docs samples."""
    log = Log.create(data_dir, origin="explorer.test/teelog", database_url=database_url)
    built = Built(log=log, data_dir=data_dir)
    _raw, _doc, result = verified_bundle()
    built.verdict = result.to_json()
    built.attestation_indexes.append(import_bundle(log))
    for seq in range(receipts):
        entry = make_receipt(seq)
        built.receipts.append(entry)
        built.receipt_indexes.append(log.append(encode_receipt(entry)))
    for entry in docs_receipts():
        built.receipts.append(entry)
        built.receipt_indexes.append(log.append(encode_receipt(entry)))
    return built


def append_raw(log: Log, obj: Any) -> int:
    """Append any JSON value (or bytes) as an entry, canonical when it is JSON."""
    data = obj if isinstance(obj, bytes) else canonical(obj)
    return log.append(data)
