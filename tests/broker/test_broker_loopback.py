"""The broker served on loopback (uvicorn), spoken to over raw HTTP: the path is seen as sent."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from asgi_server import serve
from broker_helpers import SAMPLE_POLICY, Guest, entry_at, failed_names, make_setup
from jwcrypto import jwe
from teelog.broker.jwe import compact_of


def test_dot_segments_reach_the_broker_unnormalised_and_are_logged(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    token = guest.attest().json()["token"]
    with serve(s.client.app) as base:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/kbs/v0/resource/acme/../../model-key",
                     headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 404 and body["type"].endswith("/InvalidRequestPath")
        entry = entry_at(s.log, int(r.getheader("Teelog-Entry-Index")))
        assert failed_names(entry) == ["kbs.resource_path"]
        conn.request("GET", "/kbs/v0/resource/acme/model-key/llama-v3",
                     headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        assert r.status == 200 and set(json.loads(r.read())) == {
            "protected", "encrypted_key", "iv", "ciphertext", "tag"}
        assert int(r.getheader("Teelog-Checkpoint-Size")) > int(r.getheader("Teelog-Entry-Index"))


def _release_over_http(base: str, key: bytes) -> tuple[int, int]:
    with httpx.Client(base_url=base) as client:
        guest = Guest(client)
        guest.auth()
        token = guest.attest().json()["token"]
        r = client.get("/kbs/v0/resource/acme/model-key/llama-v3",
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        out = jwe.JWE()
        out.deserialize(compact_of(r.json()), key=guest.private)
        assert out.payload == key
        return int(r.headers["Teelog-Entry-Index"]), int(r.headers["Teelog-Checkpoint-Size"])


def test_concurrent_guests_each_get_their_key_under_their_own_entry(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    with serve(s.client.app) as base, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _release_over_http(base, s.key), range(16)))
    indexes = [i for i, _ in results]
    assert len(set(indexes)) == 16 and all(size > i for i, size in results)
    assert [entry_at(s.log, i)["decision"] for i in indexes] == ["released"] * 16
