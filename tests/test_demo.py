"""`teelog demo`, the README's main job, run as a user runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

URL_LINE = re.compile(r"teelog explorer: (http://\S+/) +\(data in (\S+);")


def _wait_for(predicate, timeout: float = 60.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting for the demo")


@pytest.fixture
def demo():
    proc = subprocess.Popen(
        [sys.executable, "-m", "teelog", "demo", "--port", "0", "--interval", "1",
         "--traffic", "0.5", "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            match = URL_LINE.search(line)
            if match:
                yield proc, match.group(1), Path(match.group(2)), lines
                break
        else:
            pytest.fail("teelog demo exited before printing its URL:\n" + "".join(lines))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_demo_imports_the_real_bundle_polls_a_dev_node_and_marks_it_unverifiable(demo):
    proc, url, data, lines = demo
    output = "".join(lines)
    assert "imported the real NEAR AI bundle as entry 0" in output
    assert "development node (no TEE, demo upstream)" in output

    with httpx.Client(base_url=url, timeout=10) as client:
        def dev_node_seen() -> dict | None:
            nodes = {n["name"]: n for n in client.get("/api/v1/nodes").json()["items"]}
            node = nodes.get("demo-node")
            return nodes if node and node["attestations"] and node["receipts"] else None

        nodes = _wait_for(dev_node_seen)
        # The real bundle: the model attestation verifies (with 8 GPUs); the gateway's platform
        # has no archived collateral for that time, and the entry says so rather than passing.
        near = client.get("/api/v1/entries/0").json()
        roles = {a["role"]: a for a in near["entry"]["attestations"]}
        assert roles["model"]["status"] == "verified"
        assert roles["gateway"]["status"] == "unverifiable"
        assert nodes["near-ai-gpt-oss-120b"]["status"] == "unverifiable"
        # The dev node has no TEE: nothing from it is ever shown as verified.
        assert nodes["demo-node"]["status"] == "unverifiable"
        entries = client.get("/api/v1/entries", params={"limit": 100}).json()["items"]
        demo_entries = [e for e in entries if e["node"] == "demo-node"]
        assert {e["type"] for e in demo_entries} == {"attestation", "receipt"}
        assert all(e["status"] == "unverifiable" for e in demo_entries)
        # The log is served as C2SP tlog-tiles, and the pages render.
        checkpoint = client.get("/log/checkpoint").text
        assert checkpoint.startswith("demo.teelog.local/log\n")
        assert client.get("/").status_code == 200
        node_page = client.get("/nodes/demo-node")
        assert node_page.status_code == 200
        # The dev node's page leads with why nothing is measured, not a table of dashes.
        assert "Nothing was measured:" in node_page.text
        assert "declares no TEE" in node_page.text

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not data.exists(), "the demo's temporary data directory is removed at exit"
