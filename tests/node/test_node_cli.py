"""``teelog node`` as an operator runs it: a real process on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from teelog.node.demo_upstream import DEMO_MODEL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "teelog", "node", *args]


@pytest.mark.slow
def test_teelog_node_serves_signed_completions_and_keeps_the_journal(demo_upstream, tmp_path):
    port = _free_port()
    journal = tmp_path / "node.sqlite"
    env = {**os.environ, "NODE_TOKEN": "cli-secret"}
    proc = subprocess.Popen(
        _node_cmd("--upstream", demo_upstream, "--port", str(port), "--quote-provider", "none",
                  "--gpu-evidence", "none", "--token-env", "NODE_TOKEN",
                  "--journal", str(journal), "--retention", "7"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "teelog node did not start"
            time.sleep(0.1)
        auth = {"Authorization": "Bearer cli-secret"}
        assert httpx.post(f"{url}/v1/completions", json={"model": DEMO_MODEL, "prompt": "x"}
                          ).status_code == 401
        r = httpx.post(f"{url}/v1/completions", json={"model": DEMO_MODEL, "prompt": "cli run"},
                       headers=auth)
        assert r.status_code == 200
        sig = httpx.get(f"{url}/v1/signature/{r.json()['id']}", headers=auth).json()
        assert sig["signing_algo"] == "ecdsa"
        report = httpx.get(f"{url}/v1/attestation/report").json()
        assert report["tee"] == "none" and report["signing_address"] == sig["signing_address"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "quote provider 'none'" in out
    assert journal.exists()


def test_teelog_node_refuses_to_start_when_the_token_variable_is_unset(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NODE_TOKEN_UNSET"}
    proc = subprocess.run(
        _node_cmd("--upstream", "http://127.0.0.1:9", "--token-env", "NODE_TOKEN_UNSET",
                  "--journal", str(tmp_path / "j.sqlite")),
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "NODE_TOKEN_UNSET: environment variable is unset or empty" in proc.stderr


def test_teelog_node_rejects_a_non_http_upstream(tmp_path):
    proc = subprocess.run(
        _node_cmd("--upstream", "vllm:8000", "--journal", str(tmp_path / "j.sqlite")),
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "upstream must be an http(s) URL" in proc.stderr
