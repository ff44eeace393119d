"""The JSON API: shapes, verdicts identical to `teelog verify --json`, receipts with tlog-proofs,
errors, CORS, pagination bounds, and an OpenAPI document that validates and covers every route."""

from __future__ import annotations

import base64
import json

import pytest
from explorer_fixtures import NODE, append_raw
from teelog.log import open_checkpoint, parse_vkey, verify_tlog_proof


def test_index_and_status(client, built):
    assert client.get("/api/v1/").get_json()["openapi"] == "/api/v1/openapi.json"
    status = client.get("/api/v1/status").get_json()
    assert status["checkpoint"]["size"] == built.log.checkpoint().size
    assert status["indexed"] == built.log.checkpoint().size
    assert sum(c["count"] for c in status["entries"]) == built.log.checkpoint().size


def test_nodes_and_node_with_current_verdict(client, built):
    nodes = client.get("/api/v1/nodes").get_json()["items"]
    assert [n["name"] for n in nodes] == [NODE]
    node = client.get(f"/api/v1/nodes/{NODE}").get_json()
    assert node["last_index"] == built.attestation_indexes[0]
    assert node["verdict"] == built.verdict
    assert client.get("/api/v1/nodes/nope").status_code == 404


def test_node_history_lists_attestations_with_changes(client, built):
    body = client.get(f"/api/v1/nodes/{NODE}/history").get_json()
    assert [i["index"] for i in body["items"]] == built.attestation_indexes[::-1]
    assert body["items"][0]["changes"] == []
    assert body["next"] is None


def test_entry_verdict_is_exactly_teelog_verify_json(client, built):
    idx = built.attestation_indexes[0]
    body = client.get(f"/api/v1/entries/{idx}").get_json()
    assert body["type"] == "attestation"
    assert body["verdict"] == built.verdict
    assert base64.b64decode(body["entry_b64"]) == built.log.entry(idx)
    assert body["links"]["blobs"]["report"].startswith("/log/blob/")
    assert len(body["links"]["collateral"]) == len(body["entry"]["blobs"]["collateral"])


def test_entry_proof_verifies_as_a_tlog_proof(client, built):
    idx = built.receipt_indexes[1]
    body = client.get(f"/api/v1/entries/{idx}/proof").get_json()
    assert body["tree_size"] == built.log.checkpoint().size
    verify_tlog_proof(body["tlog_proof"], built.log.entry(idx), parse_vkey(built.log.vkey))


@pytest.mark.parametrize("key", ["signature", "chat_id", "address", "response_hash"])
def test_receipts_lookup_returns_entry_and_a_verifying_tlog_proof(client, built, key):
    receipt, idx = built.receipts[1], built.receipt_indexes[1]
    value = {
        "signature": receipt["signatures"]["ecdsa"]["signature"],
        "chat_id": receipt["chat_id"],
        "address": receipt["signatures"]["ecdsa"]["signing_address"],
        "response_hash": receipt["response_sha256"],
    }[key]
    body = client.get("/api/v1/receipts", query_string={key: value}).get_json()
    # the address signs every test receipt: the newest one is returned
    expected = (
        built.receipt_indexes[
            len([r for r in built.receipts if r["node_instance"] == "journal-test"]) - 1
        ]
        if key == "address"
        else idx
    )
    assert body["index"] == expected
    entry = base64.b64decode(body["entry_b64"])
    assert entry == built.log.entry(expected)
    proof = verify_tlog_proof(body["tlog_proof"], entry, parse_vkey(built.log.vkey))
    assert proof.index == expected


def test_receipts_lookup_errors(client, built):
    assert client.get("/api/v1/receipts").status_code == 400
    two = client.get("/api/v1/receipts?chat_id=a&signature=b")
    assert two.status_code == 400
    assert "exactly one" in two.get_json()["error"]["message"]
    missing = client.get("/api/v1/receipts?signature=0x" + "00" * 65)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["status"] == 404
    # an attestation's signing address is not a receipt
    addr = built.verdict["attestations"][1]["signing_address"]
    assert client.get(f"/api/v1/receipts?address={addr}").status_code == 404


def test_search_api_finds_values_and_reports_what_matched(client, built):
    m = built.verdict["attestations"][1]["measurements"]
    body = client.get("/api/v1/search", query_string={"q": m["compose_hash"].upper()}).get_json()
    assert [i["index"] for i in body["items"]] == built.attestation_indexes
    assert body["items"][0]["matched"] == ["measurement"]
    body = client.get("/api/v1/search", query_string={"q": NODE}).get_json()
    assert body["nodes"] == [NODE]
    assert len(body["items"]) == built.log.checkpoint().size
    assert client.get("/api/v1/search").status_code == 400
    assert client.get("/api/v1/search", query_string={"q": "x" * 301}).status_code == 400


def test_search_pagination_is_bounded_and_complete(client, built):
    seen, cursor = [], None
    while True:
        qs = {"q": NODE, "limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/search", query_string=qs).get_json()
        assert len(body["items"]) <= 3
        seen += [i["index"] for i in body["items"]]
        cursor = body["next"]
        if not cursor:
            break
    assert seen == list(reversed(range(built.log.checkpoint().size)))


@pytest.mark.parametrize(
    "qs", ["limit=0", "limit=201", "limit=1.5", "cursor=abc", "cursor=" + "9" * 20]
)
def test_api_rejects_bad_pagination_with_json_errors(client, qs):
    resp = client.get(f"/api/v1/entries?{qs}")
    assert resp.status_code == 400
    assert resp.is_json and resp.get_json()["error"]["message"]


def test_limit_200_is_accepted(client):
    assert client.get("/api/v1/entries?limit=200").status_code == 200


def test_entries_filter_by_type_and_node(client, built):
    body = client.get("/api/v1/entries?type=receipt").get_json()
    assert [e["index"] for e in body["items"]] == built.receipt_indexes[::-1]
    body = client.get(f"/api/v1/entries?type=attestation&node={NODE}").get_json()
    assert [e["index"] for e in body["items"]] == built.attestation_indexes
    assert client.get("/api/v1/entries?type=bogus").status_code == 400


def test_unknown_entry_types_are_served_raw(fresh, fresh_client):
    idx = append_raw(fresh.log, b"not json at all")
    body = fresh_client.get(f"/api/v1/entries/{idx}").get_json()
    assert body["type"] == "malformed"
    assert body["entry"] is None
    assert base64.b64decode(body["entry_b64"]) == b"not json at all"


def test_checkpoint_and_consistency(client, built):
    cp = client.get("/api/v1/checkpoint").get_json()
    assert cp["note"] == built.log.checkpoint().note
    assert cp["vkey"] == built.log.vkey
    from teelog.log import verify_consistency

    size = built.log.checkpoint().size
    body = client.get(f"/api/v1/consistency?from=3&to={size}").get_json()
    proof = [base64.b64decode(h) for h in body["proof"]]
    verify_consistency(3, size, proof, built.log.root(3), built.log.root(size))
    assert body["root_from"] == base64.b64encode(built.log.root(3)).decode()
    assert body["checkpoint"] == built.log.checkpoint().note
    assert client.get("/api/v1/consistency").status_code == 400
    assert client.get(f"/api/v1/consistency?from={size + 1}").status_code == 400
    assert client.get("/api/v1/consistency?from=5&to=2").status_code == 400


def test_reads_allow_any_origin(client):
    for url in ("/api/v1/nodes", "/api/v1/openapi.json", "/feeds/changes.atom"):
        assert client.get(url).headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in client.get("/").headers


def test_unknown_api_route_is_a_json_404(client):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["status"] == 404


def test_openapi_document_validates_and_describes_every_route(app, client):
    validate = pytest.importorskip("openapi_spec_validator").validate

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    routes = {
        str(rule).replace("<index:", "{").replace("<path:", "{").replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if str(rule).startswith("/api/v1/")
    }
    assert routes == set(doc["paths"])


def test_checkpoints_by_size_are_the_signed_history(client, built):
    size = built.log.checkpoint().size
    latest = client.get(f"/api/v1/checkpoints/{size}").get_json()
    assert latest["note"] == built.log.checkpoint().note
    first = client.get("/api/v1/checkpoints/1").get_json()  # one append = one signed size
    cp = open_checkpoint(first["note"], parse_vkey(built.log.vkey))
    assert (cp.size, cp.root) == (1, built.log.root(1))
    assert client.get(f"/api/v1/checkpoints/{size + 10}").status_code == 404


def test_shortened_entry_shows_the_full_verdict_from_its_verdict_blob(fresh, fresh_client):
    from explorer_fixtures import append_attestation, verified_bundle

    raw, _doc, result = verified_bundle()

    def bloat(entry):
        for att in entry["attestations"]:
            for check in att["checks"]:
                check["detail"] = check["detail"] + " " + "x" * 9000

    idx = append_attestation(fresh.log, raw=raw, result=result, mutate=bloat)
    stored = json.loads(fresh.log.entry(idx))
    assert stored["blobs"]["verdict"]  # the collector had to shorten it
    assert all(len(c["detail"]) <= 200 for a in stored["attestations"] for c in a["checks"])
    body = fresh_client.get(f"/api/v1/entries/{idx}").get_json()
    details = [c["detail"] for a in body["verdict"]["attestations"] for c in a["checks"]]
    assert all(d.endswith("x" * 9000) for d in details)
    assert body["links"]["blobs"]["verdict"] == f"/log/blob/{stored['blobs']['verdict']}"


def test_missing_report_blob_is_said_and_not_cached(fresh, fresh_client):
    from explorer_fixtures import append_attestation, verified_bundle

    raw, _doc, result = verified_bundle()
    idx = append_attestation(fresh.log, raw=raw, result=result)
    report = json.loads(fresh.log.entry(idx))["blobs"]["report"]
    path = fresh.log.blobs.path(report)
    kept = path.read_bytes()
    path.unlink()
    try:
        html = fresh_client.get(f"/entries/{idx}").get_data(as_text=True)
        assert "the report blob is not in this explorer&#39;s blob store" in html
        assert "report.mr_td" not in html
    finally:
        path.write_bytes(kept)
    html = fresh_client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "report.mr_td" in html


def test_proofs_always_match_their_checkpoint_while_the_log_grows(fresh, fresh_client):
    import threading

    from explorer_fixtures import make_receipt
    from teelog.entries.receipt import encode_receipt
    from teelog.explorer.app import create_app

    stop = threading.Event()
    vkey = parse_vkey(fresh.log.vkey)

    def grow() -> None:
        seq = 1000
        while not stop.is_set() and seq < 1060:
            fresh.log.append(encode_receipt(make_receipt(seq)))
            seq += 1

    writer = threading.Thread(target=grow)
    writer.start()
    app = create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0})
    failures, checked = [], 0
    try:
        while writer.is_alive():
            for idx in (0, fresh.receipt_indexes[0]):
                body = app.test_client().get(f"/api/v1/entries/{idx}/proof").get_json()
                try:
                    verify_tlog_proof(body["tlog_proof"], fresh.log.entry(idx), vkey)
                except Exception as exc:  # collected: every proof must verify
                    failures.append(f"{idx}@{body['tree_size']}: {exc}")
                checked += 1
    finally:
        stop.set()
        writer.join()
    assert failures == []
    assert checked > 4


def test_checkpoint_reports_the_witness_policy_quorum(client, built):
    from teelog.log import parse_checkpoint
    from teelog.witness.cosigner import CosignatureSigner

    assert client.get("/api/v1/checkpoint").get_json()["witnessed"] is None  # no policy
    w = [CosignatureSigner.generate(f"witness.test/w{i}") for i in range(3)]
    (built.log.data_dir / "witness-policy").write_text(
        "".join(f"witness w{i} {s.vkey}\n" for i, s in enumerate(w))
        + "group two 2 w0 w1 w2\nquorum two\n")
    published = built.log.tiles_dir / "checkpoint"
    note = published.read_text()
    body = note[: note.index("\n\n") + 1]
    try:
        assert parse_checkpoint(note).size == built.log.checkpoint().size
        published.write_text(note + w[0].cosign(body, 1_767_139_200).line())
        got = client.get("/api/v1/checkpoint").get_json()["witnessed"]
        assert (got["quorum_met"], got["cosigned"]) == (False, ["w0"])
        published.write_text(note + "".join(s.cosign(body, 1_767_139_200).line() for s in w[1:]))
        got = client.get("/api/v1/checkpoint").get_json()["witnessed"]
        assert (got["quorum_met"], got["cosigned"]) == (True, ["w1", "w2"])
        assert [x["cosigned"] for x in got["witnesses"]] == [False, True, True]
    finally:
        published.write_text(note)
        (built.log.data_dir / "witness-policy").unlink()
