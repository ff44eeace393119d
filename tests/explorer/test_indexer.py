"""The explorer's index: built from the log alone, incremental, defensive, race-safe."""

from __future__ import annotations

import json

from explorer_fixtures import MODEL_ADDRESS, NODE, append_attestation, append_raw, verified_bundle
from sqlalchemy import delete, func, select
from teelog.explorer import schema
from teelog.explorer.entry_view import normalise_value, parse_entry
from teelog.explorer.indexer import Indexer
from teelog.explorer.store import Store


def _rows(engine, table):
    with engine.connect() as conn:
        return list(conn.execute(select(table)))


def test_indexes_every_entry_of_the_real_bundle_log(fresh):
    indexer = Indexer(fresh.log)
    assert indexer.catch_up() == fresh.log.checkpoint().size
    store = Store(fresh.log.engine)
    row = store.entry(fresh.attestation_indexes[0])
    assert row["type"] == "attestation"
    assert row["node"] == NODE
    assert row["status"] == fresh.verdict["status"]
    assert row["problems"] == []
    node = store.node(NODE)
    assert node["last_index"] == fresh.attestation_indexes[0]
    assert node["attestations"] == 1
    assert node["receipts"] == len(fresh.receipt_indexes)


def test_catch_up_is_incremental_and_idempotent(fresh):
    indexer = Indexer(fresh.log)
    first = indexer.catch_up()
    assert indexer.catch_up() == 0
    append_raw(fresh.log, {"type": "note", "v": 1, "text": "later"})
    assert indexer.catch_up() == 1
    assert indexer.cursor() == first + 1
    with fresh.log.engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(schema.entries)).scalar()
    assert n == first + 1


def test_two_indexers_on_one_database_index_each_entry_once(fresh):
    a, b = Indexer(fresh.log, batch=2), Indexer(fresh.log, batch=3)
    a.catch_up(size=3)
    b.catch_up()
    a.catch_up()
    size = fresh.log.checkpoint().size
    assert [r.idx for r in _rows(fresh.log.engine, schema.entries)] == list(range(size))
    counts = {(r.type, r.status): r.n for r in _rows(fresh.log.engine, schema.counts)}
    assert sum(counts.values()) == size


def test_unknown_and_malformed_entries_are_indexed_not_fatal(fresh):
    hostile = [
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b"{not json",
        json.dumps({"type": "future-thing", "v": 7, "node": "n1"}).encode(),
        json.dumps(
            {
                "type": "attestation",
                "v": 1,
                "node": NODE,
                "status": "verified?!",
                "attestations": [
                    "not an object",
                    {"role": 5, "measurements": {"gpus": "many", "mrtd": 12, "advisory_ids": 3}},
                    {"role": "model", "measurements": ["x"], "checks": "none"},
                ],
            }
        ).encode(),
        json.dumps({"type": "receipt", "v": 1, "node": ["list"], "signatures": "x"}).encode(),
    ]
    first = None
    for raw in hostile:
        idx = append_raw(fresh.log, raw)
        first = idx if first is None else first
    Indexer(fresh.log).catch_up()
    store = Store(fresh.log.engine)
    kinds = [store.entry(first + i)["type"] for i in range(len(hostile))]
    assert kinds == ["malformed", "malformed", "malformed", "unknown", "attestation", "receipt"]
    assert "not UTF-8" in store.entry(first)["problems"][0]
    assert "expected an object" in store.entry(first + 1)["problems"][0]
    bad_att = store.entry(first + 4)
    assert bad_att["status"] is None
    assert any("verified?!" in p for p in bad_att["problems"])
    assert any("field 'node' is list" in p for p in store.entry(first + 5)["problems"])


def test_lookup_keys_cover_addresses_quote_hashes_measurements_and_receipts(fresh):
    Indexer(fresh.log).catch_up()
    store = Store(fresh.log.engine)
    att = fresh.verdict["attestations"][1]
    m = att["measurements"]
    idx = fresh.attestation_indexes[0]
    assert store.lookup("address", MODEL_ADDRESS.upper().replace("0X", "0x")) == idx
    assert store.lookup("quote_hash", m["quote_sha256"]) == idx
    for field in ("mrtd", "rtmr3", "compose_hash", "os_image_hash", "app_id"):
        assert store.lookup("measurement", m[field]) == idx, field
    assert store.lookup("measurement", m["gpus"][0]["driver_version"]) == idx
    receipt = fresh.receipts[0]
    r_idx = fresh.receipt_indexes[0]
    assert store.lookup("chat_id", receipt["chat_id"]) == r_idx
    assert store.lookup("signature", receipt["signatures"]["ecdsa"]["signature"]) == r_idx
    assert store.lookup("response_hash", receipt["response_sha256"]) == r_idx
    assert store.lookup("request_hash", receipt["request_sha256"]) == r_idx
    assert store.lookup("signature", "0x" + "00" * 65) is None


def test_changed_measurements_are_recorded_against_the_previous_attestation(fresh):
    raw, _doc, result = verified_bundle()

    def new_compose(entry):
        entry["attestations"][1]["measurements"]["compose_hash"] = "ab" * 32
        entry["attestations"][1]["measurements"]["gpus"][3]["driver_version"] = "575.0.1"

    second = append_attestation(fresh.log, raw=raw, result=result, mutate=new_compose)
    third = append_attestation(fresh.log, raw=raw, result=result, mutate=new_compose)
    Indexer(fresh.log).catch_up()
    store = Store(fresh.log.engine)
    changes = store.changes(node=NODE).items
    fields = sorted(c["field"] for c in changes)
    assert fields == [
        "model[openai/gpt-oss-120b].compose_hash",
        "model[openai/gpt-oss-120b].gpus[3].driver_version",
    ]
    assert {c["index"] for c in changes} == {second}
    assert {c["previous_index"] for c in changes} == {fresh.attestation_indexes[0]}
    assert store.node(NODE)["changes"] == 2
    assert store.node(NODE)["last_index"] == third
    compose = next(c for c in changes if c["field"].endswith("compose_hash"))
    assert compose["new"] == "ab" * 32


def test_index_rebuilds_identically_from_the_log(fresh):
    raw, _doc, result = verified_bundle()
    append_attestation(
        fresh.log,
        raw=raw,
        result=result,
        mutate=lambda e: e["attestations"][0]["measurements"].update(tcb_status="OutOfDate"),
    )
    Indexer(fresh.log).catch_up()
    tables = (
        schema.entries, schema.keys, schema.roles, schema.nodes, schema.changes, schema.counts
    )
    before = [sorted(map(tuple, _rows(fresh.log.engine, t))) for t in tables]
    with fresh.log.engine.begin() as conn:
        for t in (*tables, schema.last_summary, schema.state):
            conn.execute(delete(t))
    Indexer(fresh.log).catch_up()
    after = [sorted(map(tuple, _rows(fresh.log.engine, t))) for t in tables]
    assert after == before


def test_normalise_value_keeps_0x_only_for_addresses_and_ecdsa_signatures():
    assert normalise_value("  0xABCDEF  ") == "abcdef"
    assert normalise_value("AB" * 20) == "0x" + "ab" * 20
    assert normalise_value("0x" + "CD" * 65) == "0x" + "cd" * 65
    assert normalise_value("chatcmpl-XYZ") == "chatcmpl-xyz"


def test_parse_entry_never_raises_on_deeply_odd_json():
    view = parse_entry(0, b'{"type": "attestation", "v": 1, "attestations": {"a": 1}}')
    assert view.kind == "attestation"
    assert "field 'attestations' is missing or not a list" in view.problems
    assert parse_entry(1, b"null").kind == "malformed"


def test_request_hook_indexes_a_bounded_amount_and_background_thread_the_rest(fresh):
    import threading
    import time

    from teelog.explorer.indexer import start_background

    indexer = Indexer(fresh.log, batch=2)
    indexer.catch_up_if_due(0.0, max_batches=1)
    assert indexer.cursor() == 2
    indexer.catch_up_if_due(3600.0)  # not due yet: nothing happens
    assert indexer.cursor() == 2
    stop = threading.Event()
    thread = start_background(indexer, 0.05, stop)
    try:
        deadline = time.monotonic() + 20
        while indexer.cursor() < fresh.log.checkpoint().size and time.monotonic() < deadline:
            time.sleep(0.05)
        assert indexer.cursor() == fresh.log.checkpoint().size
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_an_index_written_by_an_older_explorer_is_rebuilt_with_each_parts_status(fresh):
    Indexer(fresh.log).catch_up()
    tables = (schema.entries, schema.keys, schema.roles, schema.nodes, schema.counts)
    current = [sorted(map(tuple, _rows(fresh.log.engine, t))) for t in tables]
    # What an explorer before explorer_roles left: no roles, no layout version.
    with fresh.log.engine.begin() as conn:
        conn.execute(delete(schema.roles))
        conn.execute(delete(schema.state).where(schema.state.c.name == "schema"))
    store = Store(fresh.log.engine)
    assert store.entry(fresh.attestation_indexes[0])["roles"] == []
    Indexer(fresh.log)  # notices the older layout and empties the derived tables
    assert store.indexed_size() == 0
    Indexer(fresh.log).catch_up()
    assert [sorted(map(tuple, _rows(fresh.log.engine, t))) for t in tables] == current
    roles = store.entry(fresh.attestation_indexes[0])["roles"]
    assert {r["role"] for r in roles} == {"gateway", "model"}
    # An index of the current layout is left alone.
    Indexer(fresh.log)
    assert store.indexed_size() == fresh.log.checkpoint().size
