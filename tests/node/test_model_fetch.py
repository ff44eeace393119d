"""``teelog model fetch`` end to end: the real broker app on loopback with a temp log, a model
encrypted with ``teelog.models`` from real files of tests/data, and the node's fakes."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgi_server import serve
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fake_configfs_tsm import FakeTsmKernel
from fake_dstack_agent import FakeDstackAgent, vllmproxy_sample
from fake_nvml import FakeNvml
from teelog.attestation.kbs_binding import expected_gpu_nonce, expected_report_data
from teelog.broker.app import create_app
from teelog.broker.config import parse_config
from teelog.broker.jwe import wrap_secret
from teelog.broker.service import Broker
from teelog.broker.tee_key import parse_tee_key
from teelog.log import Log
from teelog.models import encrypt_model, generate_key, manifest_digest, read_manifest
from teelog.node.dstack_agent import DstackAgent
from teelog.node.gpu import NvmlGpuEvidenceProvider
from teelog.node.model_fetch import (
    MODEL_EVENT,
    FetchError,
    SampleEvidence,
    ephemeral_key,
    fetch_model,
    unwrap_key,
)

from teelog.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
RESOURCE = "acme/model-key/llama-v3"
SAMPLE_POLICY = {
    "version": "1.0",
    "allow_insecure_sample": True,
    "anyOf": [{"allOf": [{"claim": "tee", "equals": "sample"}]}],
}
STRICT_POLICY = {
    "version": "1.0",
    "allow_insecure_sample": False,
    "anyOf": [{"allOf": [{"claim": "tee", "equals": "tdx"},
                         {"claim": "tcb_status", "equals": "UpToDate"}]}],
}


@dataclass
class Deployment:
    src: Path
    enc: Path
    vkey: Path
    log: Log
    broker: Broker


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _source(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "tokenizer").mkdir(parents=True)
    shutil.copy(DATA / "tdx" / "dcapqvl_nearmpc_tdx_v4.quote.hex", src / "config.json")
    shutil.copy(DATA / "reports" / "vllmproxy_nras_response_8gpu_ppcie.json",
                src / "tokenizer" / "tokenizer.json")
    (src / "model.safetensors").write_bytes(random.Random(7).randbytes(1_300_000))
    return src


def deploy(tmp: Path, policy: dict[str, Any], *, version: str = "v3") -> Deployment:
    """An owner's model encrypted and signed, and a broker serving its key under ``policy``."""
    owner = Ed25519PrivateKey.generate()
    vkey = tmp / "owner.pub.pem"
    vkey.write_bytes(owner.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    key = generate_key()
    src = _source(tmp)
    enc = tmp / "enc"
    encrypt_model(src, enc, model="acme/llama", version=version, key=key, owner_key=owner)
    keyfile = tmp / "model.key"
    keyfile.write_bytes(key)
    keyfile.chmod(0o600)
    (tmp / "policy.json").write_text(json.dumps(policy))
    log = Log.create(tmp / "data", origin="example.org/fetch-test")
    config = parse_config(tomllib.loads(f"""
[broker]
name = "fetch-test"
[log]
data = "data"
[[resources]]
path = "{RESOURCE}"
key = "model.key"
manifest = "enc/manifest.json"
policy = "policy.json"
"""), base=tmp)
    return Deployment(src, enc, vkey, log, Broker(config, log))


def fetch(base: str, d: Deployment, out: Path, *extra: str) -> int:
    return main(["model", "fetch", "--broker", base, "--resource", RESOURCE,
                 "--encrypted", str(d.enc), "--out", str(out), *extra])


def last_entry(log: Log) -> dict[str, Any]:
    return json.loads(log.entry(log.size - 1))


def test_sample_release_decrypts_the_model_and_is_logged_and_reported_insecure(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    out = tmp_path / "out"
    with serve(create_app(d.broker)) as base:
        code = fetch(base, d, out, "--quote-provider", "sample", "--owner-vkey", str(d.vkey))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert _tree(out) == _tree(d.src)
    entry = last_entry(d.log)
    assert entry["type"] == "key_release" and entry["decision"] == "released"
    assert entry["insecure"] is True and entry["requester"]["tee"] == "sample"
    assert entry["model"]["manifest_sha256"] == manifest_digest(read_manifest(d.enc))
    assert f"log entry {d.log.size - 1}" in printed
    assert "INSECURE" in printed and "verified" not in printed.lower()
    assert "signed by the owner's key" in printed


def test_strict_policy_refuses_sample_evidence_and_writes_nothing(tmp_path, capsys):
    d = deploy(tmp_path, STRICT_POLICY)
    out = tmp_path / "out"
    with serve(create_app(d.broker)) as base:
        code = fetch(base, d, out, "--quote-provider", "sample")
    err = capsys.readouterr().err
    assert code == 1
    assert "broker refused the key of acme/model-key/llama-v3: HTTP 401 PolicyDeny" in err
    assert "policy.insecure_sample" in err
    entry = last_entry(d.log)
    assert entry["decision"] == "denied" and f"entry {d.log.size - 1}" in err
    assert not out.exists() or _tree(out) == {}


def test_a_tampered_ciphertext_is_refused_after_release_without_partial_output(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    weights = d.enc / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    out = tmp_path / "out"
    with serve(create_app(d.broker)) as base:
        code = fetch(base, d, out, "--quote-provider", "sample")
    err = capsys.readouterr().err
    assert code == 1 and "decryption: model.safetensors" in err
    assert "nothing was written" in err
    assert _tree(out) == {}


def test_a_model_of_another_key_is_refused_as_wrong_key(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    other = tmp_path / "other"
    other.mkdir()
    stranger = deploy(other, SAMPLE_POLICY, version="v4")  # same files, another key
    out = tmp_path / "out"
    with serve(create_app(d.broker)) as base:
        code = main(["model", "fetch", "--broker", base, "--resource", RESOURCE, "--encrypted",
                     str(stranger.enc), "--out", str(out), "--quote-provider", "sample"])
    err = capsys.readouterr().err
    assert code == 1 and "wrong key" in err
    assert _tree(out) == {}


def test_a_manifest_not_signed_by_the_owner_is_refused_before_any_key_is_asked(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    other = tmp_path / "other"
    other.mkdir()
    impostor = deploy(other, SAMPLE_POLICY)  # its owner key is another one
    size = d.log.size
    with serve(create_app(d.broker)) as base:
        code = fetch(base, d, tmp_path / "out", "--quote-provider", "sample",
                     "--owner-vkey", str(impostor.vkey))
    assert code == 1 and "manifest signature" in capsys.readouterr().err
    assert d.log.size == size  # no decision was asked for, so none was logged


def test_a_non_empty_out_is_unusable_before_any_key_is_asked(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale").write_text("x")
    size = d.log.size
    with serve(create_app(d.broker)) as base:
        assert fetch(base, d, out, "--quote-provider", "sample") == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert d.log.size == size


def test_without_a_tee_and_without_a_named_provider_nothing_is_fetched(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    code = fetch("http://127.0.0.1:9", d, tmp_path / "out",
                 "--dstack-socket", str(tmp_path / "none.sock"),
                 "--configfs-tsm", str(tmp_path / "no-tsm"))
    assert code == 2 and "no TEE found" in capsys.readouterr().err


def test_the_configfs_quote_carries_the_kbs_binding_and_the_broker_judges_the_quote(
    tmp_path, capsys
):
    d = deploy(tmp_path, STRICT_POLICY)
    quote = bytes.fromhex((DATA / "tdx" / "dcapqvl_nearmpc_tdx_v4.quote.hex").read_text().strip())
    out = tmp_path / "out"
    with FakeTsmKernel(tmp_path / "tsm", quote) as kernel, serve(create_app(d.broker)) as base:
        code = fetch(base, d, out, "--quote-provider", "configfs",
                     "--configfs-tsm", str(tmp_path / "tsm"))
    assert code == 1 and "broker refused attestation" in capsys.readouterr().err
    entry = last_entry(d.log)
    failed = [f["name"] for f in entry["failed"]]
    # The fake kernel overwrites report_data, so the quote's signature breaks; the binding the
    # node wrote into it is the KBS rule, which the broker accepts.
    assert entry["decision"] == "denied" and entry["requester"]["tee"] == "tdx"
    assert "tdx.quote" in failed and "binding.report_data" not in failed
    assert entry["requester"]["report_data"] == kernel.report_data[-1].hex()
    assert not out.exists() or _tree(out) == {}


def test_the_dstack_quote_and_event_log_reach_the_broker(tmp_path, capsys):
    d = deploy(tmp_path, STRICT_POLICY)
    sock = tmp_path / "dstack.sock"
    with FakeDstackAgent(sock) as agent, serve(create_app(d.broker)) as base:
        code = fetch(base, d, tmp_path / "out", "--quote-provider", "dstack",
                     "--dstack-socket", str(sock))
    assert code == 1
    entry = last_entry(d.log)
    failed = [f["name"] for f in entry["failed"]]
    assert "tdx.quote" in failed and "binding.report_data" not in failed
    assert [m for m, _ in agent.calls] == ["GetQuote"]  # refused: nothing measured
    assert agent.events == []


def _sample_fetch_measured(d: Deployment, out: Path, sock: Path) -> Any:
    async def run() -> Any:
        agent = DstackAgent(str(sock))
        try:
            with serve(create_app(d.broker)) as base:
                return await fetch_model(base, RESOURCE, d.enc, out, SampleEvidence(),
                                         measure_with=agent)
        finally:
            await agent.aclose()

    return asyncio.run(run())


def test_the_manifest_digest_is_emitted_as_the_teelog_model_runtime_event(tmp_path):
    d = deploy(tmp_path, SAMPLE_POLICY)
    _, event_log, _ = vllmproxy_sample()
    with FakeDstackAgent(tmp_path / "dstack.sock", event_log=event_log) as agent:
        result = _sample_fetch_measured(d, tmp_path / "out", tmp_path / "dstack.sock")
    digest = manifest_digest(read_manifest(d.enc))
    assert agent.events == [(MODEL_EVENT, bytes.fromhex(digest))]
    assert result.digest == digest and result.insecure
    assert _tree(tmp_path / "out") == _tree(d.src)


def test_a_failed_measurement_removes_the_decrypted_model(tmp_path):
    d = deploy(tmp_path, SAMPLE_POLICY)
    out = tmp_path / "out"
    with FakeDstackAgent(tmp_path / "dstack.sock") as agent:
        agent.fail = "event log full"
        with pytest.raises(FetchError, match=r"measuring the manifest digest.*event log full"):
            _sample_fetch_measured(d, out, tmp_path / "dstack.sock")
    assert _tree(out) == {}


def _wrapped_to_node(secret: bytes) -> tuple[dict[str, str], Any]:
    private, public = ephemeral_key()
    return wrap_secret(secret, parse_tee_key(public)), private


def test_the_released_key_unwraps_only_with_the_node_s_own_key():
    key = generate_key()
    flattened, private = _wrapped_to_node(key)
    assert unwrap_key(flattened, private) == key
    other, _ = ephemeral_key()
    with pytest.raises(FetchError, match="does not decrypt with this node's key"):
        unwrap_key(flattened, other)


def test_a_released_secret_that_is_not_a_model_key_is_refused():
    flattened, private = _wrapped_to_node(b"sixteen byte key")
    with pytest.raises(FetchError, match="16 bytes, not a 32-byte model key"):
        unwrap_key(flattened, private)


def test_an_unreachable_broker_is_a_clear_error(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    assert fetch("http://127.0.0.1:9", d, tmp_path / "out", "--quote-provider", "sample") == 1
    assert "broker at http://127.0.0.1:9 unreachable" in capsys.readouterr().err


def test_an_out_inside_a_file_is_unusable_input(tmp_path, capsys):
    d = deploy(tmp_path, SAMPLE_POLICY)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    with serve(create_app(d.broker)) as base:
        assert fetch(base, d, blocker / "out", "--quote-provider", "sample") == 2
    assert "cannot create directory" in capsys.readouterr().err


GPU_POLICY = {
    "version": "1.0",
    "allow_insecure_sample": True,
    "anyOf": [{"allOf": [{"claim": "tee", "equals": "sample"},
                         {"claim": "gpu.count", "gte": 1}]}],
}


def test_gpu_evidence_is_taken_over_the_kbs_device_nonce_and_a_recorded_report_is_refused(
        tmp_path):
    d = deploy(tmp_path, GPU_POLICY)
    nvml = FakeNvml()  # recorded H100 reports: they carry the recorded nonce, not a fresh one
    out = tmp_path / "out"
    with serve(create_app(d.broker)) as base, pytest.raises(FetchError) as err:
        asyncio.run(fetch_model(base, RESOURCE, d.enc, out, SampleEvidence(),
                                gpus=NvmlGpuEvidenceProvider(nvml)))
    assert "attestation" in str(err.value) and "gpu.nonce[" in str(err.value)
    entry = last_entry(d.log)
    assert entry["decision"] == "denied" and entry["resource"] is None
    names = [f["name"] for f in entry["failed"]]
    assert names and all(n.startswith("gpu.nonce[") for n in names)
    # What the node sent: every GPU was asked over the binding's device nonce, and that
    # nvidia payload is the additional evidence the quote's report_data binds.
    sent = json.loads(d.log.blobs.get(entry["requester"]["evidence_sha256"]))
    runtime = sent["runtime-data"]
    device_nonce = expected_gpu_nonce(runtime["nonce"], runtime["tee-pubkey"])
    assert nvml.nonces == [device_nonce] * len(nvml.gpus)
    additional = sent["tee-evidence"]["additional_evidence"]
    assert json.loads(additional)["nvidia"]["nonce"] == device_nonce.hex()
    assert entry["requester"]["report_data"] == expected_report_data(
        runtime["nonce"], runtime["tee-pubkey"], additional).hex()
    assert not out.exists() or _tree(out) == {}


def test_no_gpu_evidence_is_denied_when_the_policy_requires_gpus(tmp_path, capsys):
    d = deploy(tmp_path, GPU_POLICY)
    out = tmp_path / "out"
    with serve(create_app(d.broker)) as base:
        code = fetch(base, d, out, "--quote-provider", "sample", "--gpu-evidence", "none")
    err = capsys.readouterr().err
    assert code == 1 and "PolicyDeny" in err and "gpu.count gte 1" in err
    entry = last_entry(d.log)
    assert entry["decision"] == "denied" and entry["requester"]["claims"]["gpu.count"] == 0
    assert not out.exists() or _tree(out) == {}


def test_node_start_up_fetch_refused_means_the_node_does_not_serve(tmp_path, capsys):
    d = deploy(tmp_path, STRICT_POLICY)
    quote = bytes.fromhex((DATA / "tdx" / "dcapqvl_nearmpc_tdx_v4.quote.hex").read_text().strip())
    out = tmp_path / "out"
    with FakeTsmKernel(tmp_path / "tsm", quote), serve(create_app(d.broker)) as base:
        # The upstream and port are never used: the refused fetch ends the start-up first.
        code = main(["node", "--upstream", "http://127.0.0.1:9", "--port", "9",
                     "--quote-provider", "configfs", "--configfs-tsm", str(tmp_path / "tsm"),
                     "--gpu-evidence", "none", "--journal", str(tmp_path / "j.sqlite"),
                     "--model-broker", base, "--model-resource", RESOURCE,
                     "--model-encrypted", str(d.enc), "--model-out", str(out)])
    assert code == 1 and "broker refused attestation" in capsys.readouterr().err
    entry = last_entry(d.log)
    assert entry["decision"] == "denied" and entry["requester"]["tee"] == "tdx"
    assert not out.exists() or _tree(out) == {}
    assert not (tmp_path / "j.sqlite").exists()  # the node never started serving


def test_node_start_up_fetch_needs_its_directories_and_a_tee(tmp_path, capsys):
    common = ["node", "--upstream", "http://127.0.0.1:9", "--model-broker", "http://127.0.0.1:9",
              "--journal", str(tmp_path / "j.sqlite")]
    assert main([*common, "--model-resource", RESOURCE]) == 2
    assert "needs --model-encrypted, --model-out" in capsys.readouterr().err
    assert main([*common, "--quote-provider", "none", "--model-resource", RESOURCE,
                 "--model-encrypted", str(tmp_path), "--model-out", str(tmp_path / "o")]) == 2
    assert "needs a TEE" in capsys.readouterr().err
