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
    assert "as entry 0 of node near-ai-gpt-oss-120b: unverifiable" in output
    assert "as entry 1 of node near-ai-gpt-oss-120b-model: verified" in output
    assert "as entry 2 of node near-ai-gateway: warning" in output
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
        home = client.get("/")
        assert home.status_code == 200
        node_page = client.get("/nodes/demo-node")
        assert node_page.status_code == 200
        # The dev node's page leads with why nothing is measured, not a table of dashes.
        assert "Nothing was measured:" in node_page.text
        assert "declares no TEE" in node_page.text

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not data.exists(), "the demo's temporary data directory is removed at exit"


def _node_row(html: str, name: str) -> str:
    """The home page's Nodes-table row of node ``name``, whitespace collapsed."""
    nodes = html[html.index("<h2>Nodes</h2>"):html.index("<h2>Latest entries")]
    for row in re.findall(r"<tr>(.*?)</tr>", nodes, re.S):
        if f'href="/nodes/{name}"' in row:
            return " ".join(row.split())
    raise AssertionError(f"no row for node {name} on the home page")


@pytest.mark.slow
def test_demo_first_screen_shows_a_real_node_verified_and_the_dev_node_unverifiable(demo):
    """From real data, with no fake involved: the model node verifies as of a time inside its
    archived collateral's window; the dev node has no TEE and the home page says so."""
    _proc, url, _data, _lines = demo
    with httpx.Client(base_url=url, timeout=10) as client:
        nodes = _wait_for(lambda: (
            lambda n: n if n.get("demo-node", {}).get("attestations") else None
        )({n["name"]: n for n in client.get("/api/v1/nodes").json()["items"]}))
        real = nodes["near-ai-gpt-oss-120b-model"]
        assert real["status"] in ("verified", "warning")
        assert [r["status"] for r in real["roles"]] == [real["status"]]
        assert real["tcb_status"] == "UpToDate"
        # Its entry is the real report: the blob holds the shipped bytes, no fake involved.
        entry = client.get(f"/api/v1/entries/{real['last_index']}").json()
        report = client.get(entry["links"]["blobs"]["report"]).content
        shipped = Path(__file__).resolve().parents[1] / "teelog" / "demo_data"
        assert report == (shipped / "nearai_gpt-oss-120b_model_report.json").read_bytes()
        assert report in (shipped / "nearai_gpt-oss-120b_attestation_report.json").read_bytes()
        # The gateway's own report, as of the archived collateral of its platform: Intel rates
        # its TCB out of date then, so it is a warning, with the reason in one line.
        gateway = nodes["near-ai-gateway"]
        assert gateway["status"] == "warning" and gateway["tcb_status"] == "OutOfDate"
        assert gateway["roles"][0]["reason"].startswith("tdx.tcb: OutOfDate")
        gateway_report = client.get(
            client.get(f"/api/v1/entries/{gateway['last_index']}").json()["links"]["blobs"]["report"]
        ).content
        assert gateway_report in (
            shipped / "nearai_gpt-oss-120b_attestation_report.json"
        ).read_bytes()
        dev = nodes["demo-node"]
        assert dev["status"] == "unverifiable"
        assert all(r["status"] == "unverifiable" for r in dev["roles"])
        assert any("declares no TEE" in (r["reason"] or "") for r in dev["roles"])

        html = client.get("/").text
        real_row = _node_row(html, "near-ai-gpt-oss-120b-model")
        assert f'class="badge ok">{real["status"]}<' in real_row
        dev_row = _node_row(html, "demo-node")
        assert 'class="badge muted">unverifiable<' in dev_row
        assert "declares no TEE" in dev_row  # the one sentence saying why
        assert 'class="badge warn">warning<' in _node_row(html, "near-ai-gateway")
        bundle_row = _node_row(html, "near-ai-gpt-oss-120b")
        assert '<span class="role">model</span><span class="badge ok">verified</span>' in bundle_row
