"""Hostile log entries: JSON nested 1,000 deep, an integer of 5,000 digits and a lone
surrogate escape, appended to a real log. The log is append-only, so every reader shows
each as a malformed entry (bytes, hash, index) and goes on with the next one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path

import pytest
from explorer_fixtures import append_raw, make_receipt
from teelog.entries.receipt import encode_receipt
from teelog.explorer import create_app
from teelog.explorer.store import Store
from teelog.log.served import HttpLog
from teelog.monitor.follow import Monitor, reverify_with_teelog
from werkzeug.serving import make_server

NEAR_BUNDLE = (
    Path(__file__).resolve().parents[1]
    / "data/gpu/nearai-cloud-gpt-oss-120b-2026-04/attestation_report.json"
)
HOSTILE = [
    b"[" * 1000 + b"]" * 1000,
    b'{"type":"receipt","v":1,"seq":' + b"7" * 5000 + b"}",
    b'{"type":"attestation","v":1,"node":"\\ud800"}',
]


class Sink:
    def __init__(self) -> None:
        self.alerts: list[dict] = []

    def deliver(self, alert: dict) -> None:
        self.alerts.append(alert)


@pytest.fixture
def hostile(fresh):
    """``fresh`` with the three hostile entries and then a good receipt after them."""
    indexes = [append_raw(fresh.log, raw) for raw in HOSTILE]
    after = fresh.log.append(encode_receipt(make_receipt(99)))
    return fresh, indexes, after


def test_the_explorer_starts_and_indexes_past_them_as_malformed_entries(hostile):
    fresh, indexes, after = hostile
    app = create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0})
    # ``teelog serve`` catches the index up before it listens: this must not stop at them.
    assert app.extensions["teelog"].indexer.catch_up() > 0
    store = Store(fresh.log.engine)
    assert [store.entry(i)["type"] for i in indexes] == ["malformed"] * 3
    problems = [store.entry(i)["problems"][0] for i in indexes]
    assert "nested 1000 levels deep" in problems[0]
    assert "not JSON" in problems[1]
    assert "lone surrogate" in problems[2]
    assert store.entry(after)["type"] == "receipt"

    client = app.test_client()
    for index, raw in zip(indexes, HOSTILE, strict=True):
        page = client.get(f"/entries/{index}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "This entry is malformed" in html and f"Entry #{index}" in html
        assert hashlib.sha256(raw).hexdigest() in html
        api = client.get(f"/api/v1/entries/{index}")
        assert api.status_code == 200
        doc = api.get_json()
        assert doc["type"] == "malformed" and doc["entry"] is None
        assert base64.b64decode(doc["entry_b64"]) == raw
        assert doc["entry_sha256"] == hashlib.sha256(raw).hexdigest()
        assert client.get(f"/entries/{index}/raw").data == raw
    for path in ("/", "/entries", "/nodes", "/api/v1/entries", f"/entries/{after}"):
        assert client.get(path).status_code == 200, path


def test_the_monitor_reports_each_as_malformed_and_goes_on(hostile, tmp_path):
    fresh, indexes, after = hostile
    app = create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = Sink()
    try:
        mon = Monitor(
            HttpLog(f"http://127.0.0.1:{server.server_port}/log/"),
            fresh.log.vkey,
            tmp_path / "state.json",
            sink,
            reverify=reverify_with_teelog,
        )
        result = mon.poll()
    finally:
        server.shutdown()
    assert result.size == after + 1 == result.entries_read
    malformed = [a for a in sink.alerts if a["type"] == "entry.malformed"]
    assert [a["index"] for a in malformed] == indexes
    for alert, raw in zip(malformed, HOSTILE, strict=True):
        assert alert["entry_sha256"] == hashlib.sha256(raw).hexdigest()
        assert base64.b64decode(alert["entry_b64"]) == raw[:4096]
    assert "nested 1000 levels deep" in malformed[0]["detail"]
    assert "lone surrogate" in malformed[2]["detail"]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/entries/\u0661\u0662", "in ASCII digits"),
        ("/entries/99999999999999999999/raw", "below 2^63"),
        ("/api/v1/entries/18446744073709551616", "below 2^63"),
        ("/api/v1/entries/1_0/proof", "in ASCII digits"),
        ("/api/v1/checkpoints/18446744073709551616", "below 2^63"),
        ("/api/v1/checkpoints/9223372036854775808", "below 2^63"),
        ("/api/v1/entries?cursor=9999999999999999999", "below 2^63"),
        ("/api/v1/entries?limit=\u0661", "in ASCII digits"),
        ("/api/v1/consistency?from=\u0661", "in ASCII digits"),
        ("/api/v1/consistency?from=1&to=" + "9" * 5000, "below 2^63"),
    ],
)
def test_unicode_digits_and_numbers_beyond_64_bits_are_400_with_a_message(client, path, says):
    resp = client.get(path)
    assert resp.status_code == 400, path
    assert says in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    ["/log/tile/0/x999/999/999/999/999/999/999", "/log/tile/entries/x" + "999/" * 40 + "999",
     "/log/tile/0/" + "9" * 5000],
)
def test_huge_tile_indexes_are_client_errors_not_500(client, path):
    assert 400 <= client.get(path).status_code < 500


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"text": "[" * 3000 + "]" * 3000}, "nested 3000 levels deep"),
        (
            {"text": "[1, 2]", "kind": "report"},
            "kind=report, but not an input teelog can read: a JSON list",
        ),
        ({"text": '{"n": ' + "1" * 5000 + "}"}, "4300 digits"),
    ],
)
def test_verify_page_answers_400_with_a_message_for_hostile_json(client, data, says):
    resp = client.post("/verify", data=data)
    assert resp.status_code == 400
    assert says in resp.get_data(as_text=True)


def test_verify_page_caps_attestations_per_upload_and_says_its_limits(client, built):
    from teelog.explorer.verifying import MAX_ATTESTATIONS

    near = json.loads(NEAR_BUNDLE.read_text())
    # The real model attestation, without its GPU payload (which alone is ~1 MB), many times.
    model = {k: v for k, v in near["model_attestations"][0].items() if k != "nvidia_payload"}
    near["model_attestations"] = [model] * (MAX_ATTESTATIONS + 1)
    resp = client.post("/verify", data={"text": json.dumps(near)})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert f"holds {MAX_ATTESTATIONS + 2} attestations" in html
    assert f"at most {MAX_ATTESTATIONS} attestations per upload" in client.get("/verify").get_data(
        as_text=True
    )


def test_verify_page_reads_a_bare_gpu_payload_and_caps_its_gpus(client):
    from teelog.explorer.verifying import MAX_GPUS

    payload = json.loads((NEAR_BUNDLE.parent / "model0_nvidia_payload.json").read_text())
    resp = client.post("/verify", data={"text": json.dumps(payload), "at": "2026-03-11T03:33:20Z"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Read as a gpu" in html and "gpu.evidence[7]" in html
    assert "the GPU evidence is not bound to a request" in html
    payload["evidence_list"] = payload["evidence_list"] * 3  # 24 GPUs
    resp = client.post("/verify", data={"text": json.dumps(payload)})
    assert resp.status_code == 400
    assert f"lists 24 GPUs; this page verifies at most {MAX_GPUS}" in resp.get_data(as_text=True)
