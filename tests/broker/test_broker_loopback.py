"""The broker served on loopback (uvicorn), spoken to over raw HTTP: the path is seen as sent."""

from __future__ import annotations

import http.client
import json

from asgi_server import serve
from broker_helpers import SAMPLE_POLICY, Guest, entry_at, failed_names, make_setup


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
