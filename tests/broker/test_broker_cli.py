"""``teelog broker`` as a process: it logs its policies, then serves the protocol."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
from broker_helpers import SAMPLE_POLICY, write_key, write_manifest
from teelog.log import Log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_teelog_broker_serves_auth_after_logging_its_policy(tmp_path):
    log = Log.create(tmp_path / "data", origin="example.org/broker-cli")
    log.close()
    write_key(tmp_path / "k.key", bytes(range(32)))
    write_manifest(tmp_path / "m.json", bytes(range(32)), "m", "1")
    (tmp_path / "p.json").write_text(json.dumps(SAMPLE_POLICY))
    (tmp_path / "broker.toml").write_text(
        '[log]\ndata = "data"\n[[resources]]\npath = "acme/mk/v1"\nkey = "k.key"\n'
        'manifest = "m.json"\npolicy = "p.json"\n')
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "teelog", "broker", "--config", str(tmp_path / "broker.toml"),
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/kbs/v0/auth",
                               json={"version": "0.4.0", "tee": "sample"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "broker did not start"
                time.sleep(0.1)
        assert r.status_code == 200 and len(r.json()["nonce"]) == 44
        assert "kbs-session-id" in r.cookies
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    log = Log.open(tmp_path / "data")
    entry = json.loads(log.entry(0))
    assert entry["type"] == "key_policy" and entry["resource"] == "acme/mk/v1"
