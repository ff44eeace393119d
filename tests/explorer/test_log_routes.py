"""The /log/ static endpoints (c2sp.org/tlog-tiles), mounted on a bare Flask app."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from flask import Flask
from teelog.explorer.log_routes import log_blueprint
from teelog.log import Log, TileReader, leaf_hash, open_checkpoint, parse_vkey
from teelog.log.tiles import decode_bundle, split_hashes

ORIGIN = "teelog.test/routes"


@pytest.fixture
def log(tmp_path):
    log = Log.create(tmp_path / "data", ORIGIN)
    log.append_many([b"entry %d" % i for i in range(300)])
    log.append_many([b"entry %d" % i for i in range(300, 310)])
    yield log
    log.close()


@pytest.fixture
def client(log):
    app = Flask("bare")
    app.register_blueprint(log_blueprint(log))
    return app.test_client()


def test_checkpoint_is_signed_plain_text_with_a_short_cache(client, log):
    r = client.get("/log/checkpoint")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    max_age = int(r.headers["Cache-Control"].split("max-age=")[1])
    assert 0 < max_age <= 5
    cp = open_checkpoint(r.get_data(as_text=True), parse_vkey(log.vkey))
    assert cp.size == 310


def test_vkey_is_served(client, log):
    r = client.get("/log/vkey")
    assert r.status_code == 200 and r.get_data(as_text=True) == log.vkey + "\n"


def test_tiles_and_bundles_are_immutable_and_rebuild_the_root(client, log):
    r = client.get("/log/tile/0/000")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "immutable" in r.headers["Cache-Control"]
    assert len(r.data) == 8192

    def fetch(path: str) -> bytes:
        resp = client.get(f"/log/{path}")
        if resp.status_code == 404:
            raise FileNotFoundError(path)
        return resp.data

    reader = TileReader(fetch, 310)
    assert reader.root() == log.checkpoint().root
    entries = decode_bundle(fetch("tile/entries/001.p/54"))
    assert entries[-1] == b"entry 309"
    cells = split_hashes(fetch("tile/0/001.p/54"))
    assert [leaf_hash(e) for e in entries] == cells


def test_an_earlier_checkpoints_partial_tile_is_still_served(client):
    # Size 300 was signed: its partial tiles (width 44) stay available.
    assert client.get("/log/tile/0/001.p/44").status_code == 200
    assert client.get("/log/tile/entries/001.p/44").status_code == 200


def test_bundles_are_gzip_encoded_when_asked(client):
    plain = client.get("/log/tile/entries/000").data
    r = client.get("/log/tile/entries/000", headers={"Accept-Encoding": "gzip, identity"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.data) == plain
    assert "Accept-Encoding" in r.headers["Vary"]


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/log/tile/0/0", "not a tlog-tiles path"),
        ("/log/tile/0/x000/000", "redundant"),
        ("/log/tile/0/000.p/256", "not between 1 and 255"),
        ("/log/tile/0/000.p/0", "not a tlog-tiles path"),
        ("/log/tile/00/000", "not a tlog-tiles path"),
        ("/log/tile/0/001", "not covered by the latest checkpoint"),
        ("/log/tile/0/001.p/45", "no signed checkpoint"),
        ("/log/tile/entries/002", "not covered"),
        ("/log/tile/1/000", "not covered"),
        ("/log/tile/../log.skey", "not a tlog-tiles path"),
        ("/log/tile/0/../../../log.skey", "not a tlog-tiles path"),
        ("/log/blob/zz", "not a lowercase hex"),
        ("/log/blob/" + "0" * 64, "no blob"),
        ("/log/nothing", "not a log resource"),
        ("/log/", "not a log resource"),
        ("/log/log.skey", "not a log resource"),
    ],
)
def test_unknown_or_malformed_paths_get_404_with_a_reason(client, path, reason):
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert reason in r.get_data(as_text=True)


def test_uncommitted_files_on_disk_are_never_served(client, log):
    # A crashed batch may leave files beyond the signed size; they are not published.
    stray = log.tiles_dir / "tile" / "0" / "001.p" / "100"
    stray.write_bytes(b"\x00" * 3200)
    assert client.get("/log/tile/0/001.p/100").status_code == 404


def test_blobs_are_served_by_digest_and_immutable(client, log):
    digest = log.blobs.put(b"raw attestation report")
    r = client.get(f"/log/blob/{digest}")
    assert r.status_code == 200 and r.data == b"raw attestation report"
    assert hashlib.sha256(r.data).hexdigest() == digest
    assert "immutable" in r.headers["Cache-Control"]
    assert client.get(f"/log/blob/{digest.upper()}").status_code == 404


def test_partial_tiles_are_cached_briefly_and_full_ones_forever(client):
    # A partial is deleted once its full tile exists, so no cache may pin it for a year.
    for path in ("/log/tile/0/001.p/54", "/log/tile/entries/001.p/54"):
        r = client.get(path)
        assert r.status_code == 200
        cache = r.headers["Cache-Control"]
        assert "immutable" not in cache
        assert 0 < int(cache.split("max-age=")[1]) <= 300
    for path in ("/log/tile/0/000", "/log/tile/entries/000"):
        cache = client.get(path).headers["Cache-Control"]
        assert "immutable" in cache and "max-age=31536000" in cache
