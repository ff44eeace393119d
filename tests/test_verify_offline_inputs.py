"""``teelog verify`` of what the explorer hands out: receipt lookups and tlog-proofs (with
``--vkey`` and ``--attestation``), bare GPU payloads (with ``--nonce``), and unusable input.

The log is a real ``teelog.log.Log``; receipts are signed with a fresh secp256k1 key as the
node signs them; the GPU payload and the NEAR bundle are the real ones in tests/data.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from teelog.attestation.signing import EcdsaSigner
from teelog.entries.attestation import attestation_entry
from teelog.entries.encoding import canonical
from teelog.entries.receipt import encode_receipt, receipt_entry
from teelog.log import Log

from teelog.cli import main

DATA = Path(__file__).resolve().parent / "data"
NEAR_DIR = DATA / "gpu" / "nearai-cloud-gpt-oss-120b-2026-04"
NEAR_BUNDLE = NEAR_DIR / "attestation_report.json"
GPU_PAYLOAD = NEAR_DIR / "model0_nvidia_payload.json"
NEAR_COLLATERAL = DATA / "tdx" / "dcapqvl_tdx_v5.collateral.json"
NEAR_MODEL_AT = "1773200000"  # tests/data/tdx/README.md: model quote UpToDate
NOW = datetime(2026, 4, 3, 12, 0, tzinfo=UTC)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def signed_receipt(signer: EcdsaSigner, attestation_index: int | None) -> bytes:
    request, response = b'{"messages": []}', b'{"choices": []}'
    req, resp = hashlib.sha256(request).hexdigest(), hashlib.sha256(response).hexdigest()
    text = f"{req}:{resp}"
    item = {
        "seq": 1, "chat_id": "chatcmpl-1", "model": "m", "text": text,
        "request_sha256": req, "response_sha256": resp, "signed_at": "2026-04-03T12:00:00Z",
        "ecdsa": {"signing_address": signer.address, "signature": signer.sign(text)},
        "ed25519": None,
    }
    entry = receipt_entry(
        node="n1", node_instance="j1", item=item, observed_at=NOW,
        attestation_index=attestation_index, status="verified", checks=[],
    )
    return encode_receipt(entry)


def attestation_naming(log: Log, address: str, status: str) -> bytes:
    verdict = {
        "role": "model", "model": "m", "signing_address": address, "signing_algo": "ecdsa",
        "status": status, "checks": [], "measurements": None,
    }
    entry = attestation_entry(
        node="n1", url=None, format="vllm-proxy", source="poll", observed_at=NOW,
        verified_at=NOW, nonce=None, attestations=[verdict],
        report_blob=log.blobs.put(b"{}"), collateral_blobs=[],
    )
    return canonical(entry)


def lookup(log: Log, index: int) -> dict:
    """What ``GET /api/v1/receipts`` (and the entry API) answers for ``index``."""
    return {
        "index": index,
        "entry_b64": base64.b64encode(log.entry(index)).decode(),
        "tlog_proof": log.tlog_proof(index),
    }


@pytest.fixture
def logged(tmp_path):
    """A log with a (synthetic) verified attestation of a fresh key and a receipt it signed."""
    log = Log.create(tmp_path / "log", "teelog.test/verify")
    signer = EcdsaSigner.generate()
    a = log.append(attestation_naming(log, signer.address, "verified"))
    r = log.append(signed_receipt(signer, a))
    files = {}
    for name, doc in (("receipt", lookup(log, r)), ("attestation", lookup(log, a))):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(doc))
    files["proof"] = tmp_path / "receipt.tlog-proof"
    files["proof"].write_text(log.tlog_proof(r))
    files["entry"] = tmp_path / "receipt.entry"
    files["entry"].write_bytes(log.entry(r))
    files["bare-attestation"] = tmp_path / "attestation.entry"
    files["bare-attestation"].write_bytes(log.entry(a))
    yield log, signer, files
    log.close()


def checks(out: str) -> dict[str, str]:
    doc = json.loads(out)
    return {c["name"]: c["status"] for c in doc["attestations"][0]["checks"]}


def test_a_receipt_lookup_verifies_offline_and_its_signer_passes_with_the_proven_attestation(
    logged, capsys
):
    log, _signer, files = logged
    code, out, err = run(
        capsys, str(files["receipt"]), "--vkey", log.vkey,
        "--attestation", str(files["attestation"]), "--json",
    )
    assert code == 0, err
    assert checks(out) == {
        "log.inclusion": "pass", "receipt.text": "pass", "receipt.signature.ecdsa": "pass",
        "receipt.signer": "pass",
    }
    assert json.loads(out)["status"] == "verified"


def test_a_tlog_proof_file_with_its_entry_verifies_like_the_lookup(logged, capsys):
    log, _signer, files = logged
    code, out, _ = run(
        capsys, str(files["proof"]), "--entry", str(files["entry"]), "--vkey", log.vkey, "--json"
    )
    assert code == 1  # no --attestation: receipt.signer cannot pass
    assert checks(out)["log.inclusion"] == "pass"
    assert checks(out)["receipt.signer"] == "skip"


def test_an_attestation_entry_whose_inclusion_is_not_proven_only_warns(logged, capsys):
    log, _signer, files = logged
    code, out, _ = run(
        capsys, str(files["receipt"]), "--vkey", log.vkey,
        "--attestation", str(files["bare-attestation"]), "--json",
    )
    assert code == 0
    assert checks(out)["receipt.signer"] == "warn"
    assert "inclusion not checked" in out


def test_a_signer_no_verified_attestation_vouches_for_fails(logged, tmp_path, capsys):
    log, _signer, files = logged
    # The real NEAR bundle, verified again: its verified model key is not the receipt's signer.
    code, out, _ = run(
        capsys, str(files["receipt"]), "--vkey", log.vkey, "--attestation", str(NEAR_BUNDLE),
        "--collateral", str(NEAR_COLLATERAL), "--at", NEAR_MODEL_AT, "--json",
    )
    assert code == 1
    assert checks(out)["receipt.signer"] == "fail"
    assert "is not among the 1 signing key(s)" in out
    # An attestation entry that logged the key as unverifiable vouches for nothing.
    other = attestation_naming(log, _signer.address, "unverifiable")
    index = log.append(other)
    (tmp_path / "unverified.json").write_text(json.dumps(lookup(log, index)))
    code, out, _ = run(
        capsys, str(files["receipt"]), "--vkey", log.vkey,
        "--attestation", str(tmp_path / "unverified.json"), "--json",
    )
    assert code == 1 and checks(out)["receipt.signer"] == "fail"


def test_a_tampered_entry_or_another_key_fails_the_inclusion(logged, tmp_path, capsys):
    log, _signer, files = logged
    doc = json.loads(files["receipt"].read_text())
    entry = base64.b64decode(doc["entry_b64"]).replace(b'"seq":1', b'"seq":2')
    doc["entry_b64"] = base64.b64encode(entry).decode()
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    code, out, _ = run(capsys, str(tmp_path / "tampered.json"), "--vkey", log.vkey, "--json")
    assert code == 1 and checks(out)["log.inclusion"] == "fail"
    other = Log.create(tmp_path / "other", "teelog.test/verify")
    code, out, _ = run(capsys, str(files["receipt"]), "--vkey", other.vkey, "--json")
    other.close()
    assert code == 1 and checks(out)["log.inclusion"] == "fail"


def test_a_bare_gpu_payload_verifies_with_its_nonce_and_fails_with_another(capsys):
    payload = json.loads(GPU_PAYLOAD.read_text())
    nonce = payload["nonce"] if "nonce" in payload else payload["evidence_list"][0]["nonce"]
    code, out, err = run(capsys, str(GPU_PAYLOAD), "--nonce", nonce, "--at", NEAR_MODEL_AT,
                         "--json")
    doc = json.loads(out)
    assert doc["attestations"][0]["role"] == "gpu"
    names = checks(out)
    assert names["gpu.nonce[0]"] == "pass" and names["gpu.evidence[0]"] == "pass"
    assert doc["status"] in ("verified", "warning") and code == 0, err
    assert len(doc["attestations"][0]["measurements"]["gpus"]) == 8
    code, out, _ = run(capsys, str(GPU_PAYLOAD), "--nonce", "ab" * 32, "--at", NEAR_MODEL_AT,
                       "--json")
    assert code == 1 and checks(out)["gpu.nonce[0]"] == "fail"
    code, out, _ = run(capsys, str(GPU_PAYLOAD), "--at", NEAR_MODEL_AT, "--json")
    assert code == 1 and checks(out)["gpu.nonce[0]"] == "skip"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[" * 2000 + b"]" * 2000, "nested 2000 levels deep"),
        (b'{"n": ' + b"1" * 5000 + b"}", "not JSON"),
        (b'{"text": "\\udc00", "signature": "x"}', "lone surrogate"),
        (b'{"error": "x"}', "keys: error"),
        (b"c2sp.org/tlog-proof@v1\nindex 0\n\nnote\n", "--entry"),
        (b"not a quote at all", "quote"),
    ],
)
def test_unusable_input_exits_2_with_one_line(tmp_path, capsys, content, says):
    path = tmp_path / "input"
    path.write_bytes(content)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    assert err.startswith("teelog verify: ") and err.count("\n") == 1 and says in err
    assert "Traceback" not in err


def test_options_that_do_not_apply_to_the_input_are_refused(logged, capsys):
    log, _signer, files = logged
    code, _, err = run(capsys, str(GPU_PAYLOAD), "--vkey", log.vkey)
    assert code == 2 and "--vkey does not apply to a gpu" in err
    code, _, err = run(capsys, str(files["receipt"]))
    assert code == 2 and "give --vkey" in err


def _cosigned(proof: str, *signers) -> str:
    """The tlog-proof with cosignature lines appended to its checkpoint note."""
    from teelog.log import parse_tlog_proof

    note = parse_tlog_proof(proof).checkpoint_note
    body = note[: note.index("\n\n") + 1]
    return proof + "".join(s.cosign(body, 1_767_139_200).line() for s in signers)


def test_a_tlog_proof_needs_the_witness_policy_quorum(logged, capsys, tmp_path):
    from teelog.witness.cosigner import CosignatureSigner

    log, _signer, files = logged
    w = [CosignatureSigner.generate(f"witness.test/w{i}") for i in range(3)]
    policy = tmp_path / "policy"
    policy.write_text("".join(f"witness w{i} {s.vkey}\n" for i, s in enumerate(w))
                      + "group two 2 w0 w1 w2\nquorum two\n")
    base = files["proof"].read_text()
    results = {}
    for label, signers in (("one", w[:1]), ("two", w[1:])):
        files["proof"].write_text(_cosigned(base, *signers))
        _, out, _ = run(capsys, str(files["proof"]), "--entry", str(files["entry"]),
                        "--vkey", log.vkey, "--witness-policy", str(policy), "--json")
        results[label] = checks(out)["log.witnessed"]
    assert results == {"one": "fail", "two": "pass"}
