"""Broker test helpers: a real log in a temp dir, a configured broker with a mutable clock,
and a guest that speaks the KBS protocol with an ephemeral key (sample or TDX evidence)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwcrypto import jwk
from starlette.testclient import TestClient
from teelog.attestation.kbs_binding import expected_report_data
from teelog.broker.app import create_app
from teelog.broker.config import parse_config
from teelog.broker.service import Broker
from teelog.log import Log
from teelog.models import Manifest, key_id, new_manifest

DATA = Path(__file__).resolve().parents[1] / "data"
TDX = DATA / "tdx"
NEAR_GPU = DATA / "gpu" / "nearai-cloud-gpt-oss-120b-2026-04" / "model0_nvidia_payload.json"
RESOURCE = "acme/model-key/llama-v3"
# The NEAR capture month (tests/data/gpu/README.md); GPU certificates are valid then.
SAMPLE_NOW = 1776211200.0  # 2026-04-15T00:00:00Z
# dcapqvl_tdx_v4_uptodate with its collateral verifies UpToDate at this time (tests/data/tdx).
TDX_NOW = 1751624191.0

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


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    broker: Broker
    log: Log
    clock: Clock
    key: bytes
    client: TestClient
    dirs: Path
    extra: dict[str, Any] = field(default_factory=dict)


def write_manifest(path: Path, key: bytes, model: str, version: str) -> Manifest:
    """A teelog-model/v1 manifest for ``key`` (no files: the broker reads only its identity)."""
    manifest = new_manifest(model, version, key_id(key), [])
    path.write_bytes(manifest.dumps())
    return manifest


def write_key(path: Path, key: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(key)
    os.chmod(path, mode)
    return path


def make_setup(
    tmp: Path,
    policy: dict[str, Any],
    *,
    now: float = SAMPLE_NOW,
    collateral: list[str] | None = None,
    extra_toml: str = "",
) -> Setup:
    key = os.urandom(32)
    write_key(tmp / "model.key", key)
    write_manifest(tmp / "manifest.json", key, "acme/llama", "v3")
    (tmp / "policy.json").write_text(json.dumps(policy, indent=2))
    log = Log.create(tmp / "data", origin="example.org/broker-test")
    files = ", ".join(json.dumps(str(TDX / c)) for c in collateral or [])
    text = f"""
[broker]
name = "broker-test"
[log]
data = "data"
[collateral]
files = [{files}]
[[resources]]
path = "{RESOURCE}"
key = "model.key"
manifest = "manifest.json"
policy = "policy.json"
{extra_toml}
"""
    import tomllib

    config = parse_config(tomllib.loads(text), base=tmp)
    clock = Clock(now)
    broker = Broker(config, log, clock=clock)
    return Setup(broker, log, clock, key, TestClient(create_app(broker)), tmp)


class Guest:
    """A KBS client with an ephemeral key (EC P-256 unless ``rsa``)."""

    def __init__(self, client: TestClient, *, tee: str = "sample", rsa: bool = False) -> None:
        self.client = client
        self.tee = tee
        if rsa:
            self.private = jwk.JWK.generate(kty="RSA", size=2048)
            self.public = {**json.loads(self.private.export_public()), "alg": "RSA-OAEP-256"}
        else:
            self.private = jwk.JWK.generate(kty="EC", crv="P-256")
            self.public = {**json.loads(self.private.export_public()), "alg": "ECDH-ES+A256KW"}
        self.nonce: str | None = None

    def auth(self) -> str:
        r = self.client.post("/kbs/v0/auth", json={"version": "0.4.0", "tee": self.tee,
                                                   "extra-params": ""})
        assert r.status_code == 200, r.text
        self.nonce = r.json()["nonce"]
        return self.nonce

    def sample_evidence(self, *, pubkey: dict | None = None, nonce: str | None = None,
                        additional: str = "") -> dict[str, Any]:
        rd = expected_report_data(nonce or self.nonce, pubkey or self.public, additional)
        return {"svn": "1", "report_data": base64.b64encode(rd).decode()}

    def attest(self, primary: dict[str, Any] | None = None, *, nonce: str | None = None,
               additional: str = "", pubkey: dict | None = None):
        body = {
            "runtime-data": {"nonce": nonce or self.nonce, "tee-pubkey": pubkey or self.public},
            "tee-evidence": {
                "primary_evidence": primary if primary is not None
                else self.sample_evidence(additional=additional),
                "additional_evidence": additional,
            },
        }
        return self.client.post("/kbs/v0/attest", content=json.dumps(body))

    def fetch(self, path: str = RESOURCE, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(f"/kbs/v0/resource/{path}", headers=headers)


def entry_at(log: Log, index: int) -> dict[str, Any]:
    return json.loads(log.entry(index))


def failed_names(entry: dict[str, Any]) -> list[str]:
    return [f["name"] for f in entry["failed"]]
