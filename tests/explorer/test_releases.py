"""The explorer's views of key releases (issue 11): a real broker decides against a real log
in a temp dir (one sample release, one denial, the broker's key_policy entry), and the
explorer indexes that log. A release to sample evidence is INSECURE in red everywhere and is
never called verified; a hostile key_release entry is shown without crashing."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from explorer_fixtures import append_raw
from starlette.testclient import TestClient
from teelog.explorer import create_app

# The broker's own test helpers (a configured broker over a temp log and a KBS guest);
# tests/broker is a directory of test modules, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "broker"))
from broker_helpers import SAMPLE_POLICY, TDX, TDX_NOW, Guest, make_setup

MODEL = "acme/llama"
ATOM = "{http://www.w3.org/2005/Atom}"


def _decisions(log: Any) -> dict[str, Any]:
    """The broker's entries by what they are: ``policy``, ``released``, ``denied`` (at
    resource time, naming the model) and ``denied_early`` (at attest time, no model yet)."""
    found: dict[str, Any] = {}
    for i in range(log.checkpoint().size):
        doc = json.loads(log.entry(i))
        if doc["type"] == "key_policy":
            found["policy"] = (i, doc)
        elif doc["decision"] == "denied" and doc["model"]["name"] is None:
            found["denied_early"] = (i, doc)
        else:
            found[doc["decision"]] = (i, doc)
    return found


@pytest.fixture(scope="module")
def broker_log(tmp_path_factory: pytest.TempPathFactory):
    s = make_setup(tmp_path_factory.mktemp("broker"), SAMPLE_POLICY)
    s.broker.publish_policies()  # as `teelog broker` does when it starts
    early = Guest(s.client)
    early.auth()
    foreign = base64.b64encode(b"\x01" * 32).decode()
    assert early.attest(early.sample_evidence(nonce=foreign), nonce=foreign).status_code == 401
    alice = Guest(s.client)
    alice.auth()
    assert alice.attest().status_code == 200
    assert alice.fetch().status_code == 200
    mallory = Guest(TestClient(s.client.app))
    mallory.auth()
    token = mallory.attest().json()["token"]
    # Alice's session (her attested key) with Mallory's token: refused for the model's key.
    assert alice.fetch(token=token).status_code == 401
    yield s, _decisions(s.log)
    s.log.close()


@pytest.fixture(scope="module")
def client(broker_log):
    s, _ = broker_log
    return create_app(s.dirs / "data", log=s.log, config={"index_interval": 0}).test_client()


def test_broker_log_has_a_sample_release_a_denial_and_the_policy(broker_log):
    _, found = broker_log
    assert set(found) == {"released", "denied", "denied_early", "policy"}
    assert found["released"][1]["insecure"] is True


def test_models_page_lists_versions_digests_and_counts_with_insecure_in_red(client, broker_log):
    _, found = broker_log
    body = client.get("/models").get_data(as_text=True)
    assert MODEL in body and "v3" in body
    assert found["released"][1]["model"]["manifest_sha256"][:12] in body
    assert 'class="badge bad insecure"' in body and "1 INSECURE" in body


def test_model_page_shows_decisions_newest_first_with_policy_digest(client, broker_log):
    _, found = broker_log
    body = client.get(f"/models/{MODEL}").get_data(as_text=True)
    assert found["released"][1]["policy_sha256"] in body
    assert found["released"][1]["model"]["manifest_sha256"] in body
    rel, den = found["released"][0], found["denied"][0]
    assert body.index(f"#{max(rel, den)}<") < body.index(f"#{min(rel, den)}<")
    assert "INSECURE" in body and "kbs.tee_pubkey" in body
    assert client.get("/models/nobody/else").status_code == 404


def test_model_page_paginates(client, broker_log):
    _, found = broker_log
    first = client.get(f"/models/{MODEL}?limit=1").get_data(as_text=True)
    newest = max(found["released"][0], found["denied"][0])
    assert f"cursor={newest}" in first and 'rel="next"' in first
    assert client.get(f"/models/{MODEL}?limit=0").status_code == 400


def test_release_entry_page_says_what_why_and_is_insecure_never_verified(client, broker_log):
    _, found = broker_log
    idx, doc = found["released"]
    body = client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "Key released" in body and 'class="bad insecure"' in body
    assert doc["policy_sha256"] in body
    assert doc["requester"]["tee_pubkey_thumbprint"] in body
    assert "badge ok" not in body  # nothing on this page is called verified
    assert ">verified<" not in body


def test_denial_entry_page_lists_the_failed_checks(client, broker_log):
    _, found = broker_log
    idx, doc = found["denied"]
    body = client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "denied" in body and doc["failed"][0]["name"] in body
    assert doc["failed"][0]["detail"].split()[0] in body


def test_policy_entry_page_shows_the_policy_and_warns_it_allows_sample(client, broker_log):
    _, found = broker_log
    idx, doc = found["policy"]
    body = client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "Key release policy" in body and doc["policy_sha256"] in body
    assert "allow_insecure_sample" in body and "may be INSECURE" in body


def test_entries_list_marks_the_insecure_release(client, broker_log):
    _, found = broker_log
    body = client.get("/entries?type=key_release").get_data(as_text=True)
    assert body.count("INSECURE</span>") >= 1
    items = client.get("/api/v1/entries?type=key_release").get_json()["items"]
    insecure = {i["index"]: i["insecure"] for i in items}
    assert insecure[found["released"][0]] is True


@pytest.mark.parametrize("field", ["model", "key_id", "thumbprint"])
def test_search_finds_releases_by_model_key_id_thumbprint(client, broker_log, field):
    _, found = broker_log
    doc = found["released"][1]
    value = {
        "model": doc["model"]["name"],
        "key_id": doc["model"]["key_id"],
        "thumbprint": doc["requester"]["tee_pubkey_thumbprint"],
    }[field]
    items = client.get("/api/v1/search", query_string={"q": value}).get_json()["items"]
    assert found["released"][0] in {i["index"] for i in items}
    assert client.get("/api/v1/search", query_string={"q": value + "x"}).get_json()["items"] == []


def test_api_models_and_releases(client, broker_log):
    _, found = broker_log
    models = client.get("/api/v1/models").get_json()["items"]
    # The attest-time denial names no model: listed apart, under no name.
    assert sorted(m["name"] or "" for m in models) == ["", MODEL]
    v = next(m for m in models if m["name"] == MODEL)["versions"][0]
    assert (v["released"], v["insecure_released"], v["denied"]) == (1, 1, 1)
    assert v["policy_sha256"] == [found["policy"][1]["policy_sha256"]]
    page = client.get("/api/v1/releases", query_string={"model": MODEL}).get_json()
    assert [r["index"] for r in page["items"]] == sorted(
        [found["released"][0], found["denied"][0]], reverse=True)
    rel = next(r for r in page["items"] if r["kind"] == "released")
    assert rel["insecure"] is True and rel["evidence_status"] != "verified"
    assert rel["tee"] == "sample"
    one = client.get("/api/v1/releases?limit=1").get_json()
    assert len(one["items"]) == 1 and one["next"] is not None
    assert client.get("/api/v1/releases?model=other").get_json()["items"] == []
    assert client.get("/api/v1/releases?cursor=x").status_code == 400


def test_release_feed_is_atom_and_says_insecure(client):
    r = client.get(f"/feeds/releases.atom?model={MODEL}")
    assert r.mimetype == "application/atom+xml"
    feed = ET.fromstring(r.data)
    titles = [e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")]
    assert len(titles) == 2
    assert any("released" in t and "INSECURE" in t for t in titles)
    assert any("denied" in t for t in titles)
    empty = ET.fromstring(client.get("/feeds/releases.atom?model=none").data)
    assert empty.findall(f"{ATOM}entry") == []


def test_a_real_tdx_denial_is_found_by_its_quote_hash_and_shows_its_measurements(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY, now=TDX_NOW,
                   collateral=["dcapqvl_tdx_v4_uptodate.collateral.json"])
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    quote = (TDX / "dcapqvl_tdx_v4_uptodate.quote.bin").read_bytes()
    r = guest.attest({"quote": base64.b64encode(quote).decode(), "cc_eventlog": None})
    assert r.status_code == 401  # a real quote, but its report_data binds another key
    idx = int(r.headers["Teelog-Entry-Index"])
    doc = json.loads(s.log.entry(idx))
    c = create_app(tmp_path / "data", log=s.log, config={"index_interval": 0}).test_client()
    items = c.get("/api/v1/search", query_string={"q": doc["requester"]["quote_sha256"].upper()}
                  ).get_json()["items"]
    assert [(i["index"], i["matched"], i["insecure"]) for i in items] == [
        (idx, ["quote_hash"], False)]
    body = c.get(f"/entries/{idx}").get_data(as_text=True)
    assert "binding.report_data" in body and "INSECURE" not in body
    mrtd = doc["requester"]["measurements"]["mrtd"]
    assert mrtd and mrtd in body
    s.log.close()


HOSTILE = {
    "type": "key_release", "v": 1, "decision": ["released"], "insecure": "no",
    "model": {"name": "<script>alert(1)</script>", "version": 3, "manifest_sha256": {"a": 1}},
    "requester": {"tee": "tdx", "measurements": ["x"], "tee_pubkey_thumbprint": 7},
    "evidence_status": "verified", "failed": "none", "policy_sha256": None,
}


def test_hostile_key_release_is_shown_escaped_and_never_as_a_secure_release(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    idx = append_raw(s.log, HOSTILE)
    bad_flag = append_raw(s.log, {**HOSTILE, "decision": "released", "insecure": None,
                                  "model": {"name": "m"}})
    c = create_app(tmp_path / "data", log=s.log, config={"index_interval": 0}).test_client()
    page = c.get(f"/entries/{idx}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert "does not read cleanly" in body and "expected boolean" in body
    assert "Key released" not in body  # an unreadable decision is never shown as a release
    assert c.get("/models").status_code == 200
    assert c.get("/feeds/releases.atom").status_code == 200
    rel = {r["index"]: r for r in c.get("/api/v1/releases").get_json()["items"]}
    assert rel[idx]["kind"] == "denied"
    # "insecure" not exactly false: insecure, and "verified" evidence is not shown as such.
    assert rel[bad_flag]["insecure"] is True and rel[bad_flag]["evidence_status"] != "verified"
    body = c.get(f"/entries/{bad_flag}").get_data(as_text=True)
    assert 'class="bad insecure"' in body and "badge ok" not in body
    s.log.close()


def test_an_index_of_layout_2_is_rebuilt_with_the_key_releases(tmp_path):
    from sqlalchemy import delete, update
    from teelog.explorer import schema
    from teelog.explorer.indexer import SCHEMA_VERSION, Indexer
    from teelog.explorer.store import Store

    s = make_setup(tmp_path, SAMPLE_POLICY)
    s.broker.publish_policies()
    Indexer(s.log).catch_up()
    # What an explorer of layout 2 left: key_release entries as "unknown", no key events.
    with s.log.engine.begin() as conn:
        conn.execute(delete(schema.key_events))
        conn.execute(update(schema.entries).values(type="unknown"))
        conn.execute(update(schema.state).where(schema.state.c.name == "schema").values(value=2))
    store = Store(s.log.engine)
    assert store.models() == []
    Indexer(s.log).catch_up()
    assert SCHEMA_VERSION == 3
    assert [m["name"] for m in store.models()] == [MODEL]
    assert store.entries().items[0]["type"] == "key_policy"
    s.log.close()
