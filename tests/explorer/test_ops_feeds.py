"""/metrics, /healthz (stale checkpoint → 503) and the Atom feeds of changes."""

from __future__ import annotations

import os
import re
import time
from xml.etree import ElementTree as ET

from explorer_fixtures import NODE, append_attestation, verified_bundle
from teelog.explorer import create_app

ATOM = "{http://www.w3.org/2005/Atom}"


def test_metrics_are_prometheus_text_with_sizes_counts_and_nodes(client, built):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = resp.get_data(as_text=True)
    size = built.log.checkpoint().size
    assert f"teelog_log_size {size}\n" in text
    assert f"teelog_index_size {size}\n" in text
    assert re.search(r"^teelog_checkpoint_age_seconds \d+\.\d+$", text, re.M)
    assert f'teelog_entries{{type="attestation",status="{built.verdict["status"]}"}} 1' in text
    assert f'teelog_nodes{{status="{built.verdict["status"]}"}} 1' in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.]+", line), line


def test_healthz_is_ok_when_fresh_and_503_when_the_checkpoint_is_stale(built):
    app = create_app(built.data_dir, log=built.log, config={"stale_after": 300.0})
    client = app.test_client()
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.get_json()["status"] == "ok"
    path = built.log.tiles_dir / "checkpoint"
    st = path.stat()
    old = time.time() - 3600
    os.utime(path, (old, old))
    try:
        stale = client.get("/healthz")
        assert stale.status_code == 503
        body = stale.get_json()
        assert body["status"] == "stale" and "more than 300 s" in body["message"]
    finally:
        os.utime(path, (st.st_atime, st.st_mtime))


def test_atom_feed_lists_changes_all_and_per_node(fresh, fresh_client):
    raw, _doc, result = verified_bundle()
    idx = append_attestation(
        fresh.log,
        raw=raw,
        result=result,
        mutate=lambda e: e["attestations"][1]["measurements"].update(os_image_hash="cd" * 32),
    )
    append_attestation(fresh.log, node="other-node", raw=raw, result=result)
    for url in ("/feeds/changes.atom", f"/feeds/nodes/{NODE}/changes.atom"):
        resp = fresh_client.get(url)
        assert resp.mimetype == "application/atom+xml"
        feed = ET.fromstring(resp.data)
        entries = feed.findall(f"{ATOM}entry")
        assert len(entries) == 1, url
        assert entries[0].find(f"{ATOM}title").text.endswith("os_image_hash")
        assert entries[0].find(f"{ATOM}link").get("href").endswith(f"/entries/{idx}")
        assert "cd" * 32 in entries[0].find(f"{ATOM}content").text
    empty = ET.fromstring(fresh_client.get("/feeds/nodes/other-node/changes.atom").data)
    assert empty.findall(f"{ATOM}entry") == []
    assert fresh_client.get("/feeds/nodes/unknown/changes.atom").status_code == 404


def test_atom_feed_escapes_hostile_values(fresh, fresh_client):
    raw, _doc, result = verified_bundle()
    evil = "<script>alert(1)</script>\x07"
    append_attestation(
        fresh.log,
        raw=raw,
        result=result,
        mutate=lambda e: e["attestations"][1]["measurements"].update(key_provider=evil),
    )
    data = fresh_client.get("/feeds/changes.atom").data
    assert b"<script>" not in data
    feed = ET.fromstring(data)  # still well-formed XML
    content = feed.find(f"{ATOM}entry/{ATOM}content").text
    assert "<script>alert(1)</script>" in content


def test_atom_feed_keeps_hostile_values_as_inert_text():
    from teelog.explorer.feeds import render_feed

    hostile = "</content><script>alert(1)</script>\x01"
    xml = render_feed(
        [{"index": 7, "previous_index": 3, "node": "n1<b>", "field": "model.compose_hash",
          "old": "aa", "new": hostile, "time": "2026-03-11T03:33:20Z"}],
        title="t", feed_id="tag:teelog,2026:o:changes", self_url="https://x.example/feed",
        entry_url=lambda i: f"https://x.example/entries/{i}",
    )
    assert b"<script>" not in xml
    (entry,) = ET.fromstring(xml).findall(f"{ATOM}entry")  # still well-formed XML
    content = entry.find(f"{ATOM}content").text
    assert "</content><script>alert(1)</script>\ufffd" in content  # control char replaced
    assert entry.find(f"{ATOM}category").get("term") == "n1<b>"
