"""Receipts end to end with teelog's own node: signed by the node, found in the log with an
inclusion proof to the current checkpoint; never twice, never skipped, across restarts."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter

import httpx
import pytest
from collector_fakes import NEAR_MODEL_AT, PinnedClock, collector_config, entries_of
from sqlmodel import Session, select
from teelog.collector import Collector
from teelog.collector.models import CollectorReceipt, CollectorReceiptCursor, CollectorSigner
from teelog.log import leaf_hash, verify_inclusion


def _config(data_dir, url):
    return collector_config(data_dir, [{"name": "own", "url": url, "interval": "5s"}])


def _receipts(log) -> list[dict]:
    return [e for _, e in entries_of(log, "receipt")]


def test_a_receipt_signed_by_the_node_is_in_the_log_with_an_inclusion_proof(
    teelog_node, data_dir
):
    node = teelog_node()
    chat_id = node.chat("hello")
    with Collector(_config(data_dir, node.url)) as collector:
        summary = collector.run_once()
        assert summary.errors == []
        assert summary.receipts[0].appended == 1
        log = collector.log
        ((index, entry),) = entries_of(log, "receipt")

    assert entry["chat_id"] == chat_id
    assert (entry["node"], entry["seq"]) == ("own", 1)
    assert entry["node_instance"] == node.journal.instance_id
    assert entry["text"] == f"{entry['request_sha256']}:{entry['response_sha256']}"
    checks = {c["name"]: c for c in entry["checks"]}
    assert checks["receipt.text"]["status"] == "pass"
    assert checks["receipt.signature.ecdsa"]["status"] == "pass"
    assert checks["receipt.signature.ed25519"]["status"] == "pass"
    assert entry["signatures"]["ecdsa"]["signing_address"].lower() == (
        node.journal.page(0, 1)[0][0].ecdsa.signing_address.lower()
    )
    # --quote-provider none: the node's own report names the key but attests nothing, so the
    # receipt is unverifiable (never verified). No verified attestation vouches for the key,
    # so attestation_index is null; named_index points at that report.
    assert checks["receipt.signer"]["status"] == "skip"
    assert "unverifiable" in checks["receipt.signer"]["detail"]
    assert entry["attestation_index"] is None
    assert entry["named_index"] is not None
    assert entry["status"] == "unverifiable"

    checkpoint = log.checkpoint()
    proof = log.inclusion_proof(index, checkpoint.size)
    verify_inclusion(index, checkpoint.size, leaf_hash(log.entry(index)), proof, checkpoint.root)


def test_restarting_collector_and_node_mid_stream_loses_and_repeats_nothing(
    teelog_node, data_dir, tmp_path
):
    journal = tmp_path / "journal.sqlite"
    node = teelog_node(journal)
    for i in range(3):
        node.chat(f"first {i}")
    with Collector(_config(data_dir, node.url)) as collector:
        assert collector.run_once().receipts[0].appended == 3
    for i in range(2):
        node.chat(f"second {i}")
    node.stop()  # the node restarts (new keys, same journal) while the collector is down
    node = teelog_node(journal)
    for i in range(2):
        node.chat(f"third {i}")
    with Collector(_config(data_dir, node.url)) as collector:  # a new collector process
        assert collector.run_once().receipts[0].appended == 4
        assert collector.run_once().receipts[0].appended == 0
        receipts = _receipts(collector.log)
    assert sorted(r["seq"] for r in receipts) == list(range(1, 8))
    assert {r["node_instance"] for r in receipts} == {node.journal.instance_id}


def test_a_crash_between_append_and_bookkeeping_does_not_log_twice(teelog_node, data_dir):
    node = teelog_node()
    for i in range(3):
        node.chat(f"m{i}")
    with Collector(_config(data_dir, node.url)) as collector:
        collector.run_once()
        size = collector.log.checkpoint().size
        # Simulate a crash after the log append but before the indexes and cursor were saved.
        with Session(collector.log.engine) as session:
            for row in session.exec(select(CollectorReceipt)):
                row.log_index = None
                session.add(row)
            cursor = session.get(CollectorReceiptCursor, "own")
            cursor.last_seq = 0
            session.add(cursor)
            session.commit()
    with Collector(_config(data_dir, node.url)) as collector:
        collector.receipt_pollers["own"].poll(force=True)
        assert collector.log.checkpoint().size == size  # same bytes: the log's existing index
        counts = Counter(r["seq"] for r in _receipts(collector.log))
        with Session(collector.log.engine) as session:
            rows = session.exec(select(CollectorReceipt)).all()
    assert counts == {1: 1, 2: 1, 3: 1}
    assert all(r.log_index is not None for r in rows)


def test_a_new_journal_restarts_the_cursor(teelog_node, data_dir, tmp_path):
    node = teelog_node(tmp_path / "a.sqlite")
    node.chat("one")
    node.chat("two")
    with Collector(_config(data_dir, node.url)) as collector:
        collector.run_once()
    node.stop()
    node = teelog_node(tmp_path / "b.sqlite")  # storage replaced: a new node_instance
    node.chat("three")
    with Collector(_config(data_dir, node.url)) as collector:
        assert collector.run_once().receipts[0].appended == 1
        receipts = _receipts(collector.log)
    assert [(r["seq"], r["node_instance"] == node.journal.instance_id) for r in receipts] == [
        (1, False), (2, False), (1, True),
    ]


def test_receipts_gone_from_the_feed_are_counted_missing(fake_node, data_dir):
    feed = fake_node()
    feed.serve("/v1/attestation/report", json.dumps({"intel_quote": None}).encode())
    item = {
        "chat_id": "c", "model": "m", "text": "a" * 64 + ":" + "b" * 64,
        "request_sha256": "a" * 64, "response_sha256": "b" * 64,
        "signed_at": "2026-04-03T12:00:00Z", "ecdsa": None, "ed25519": None,
    }
    page = {"object": "list", "node_instance": "i", "next": 9, "has_more": False,
            "data": [dict(item, seq=7), dict(item, seq=9)]}
    feed.serve("/v1/receipts", json.dumps(page).encode())
    with Collector(_config(data_dir, feed.url)) as collector:
        outcome = collector.run_once().receipts[0]
        with Session(collector.log.engine) as session:
            cursor = session.get(CollectorReceiptCursor, "own")
        receipts = _receipts(collector.log)
    assert (outcome.appended, outcome.missing) == (2, 7)
    assert (cursor.last_seq, cursor.missing) == (9, 7)
    # No signature at all: logged, and failed.
    assert all(r["status"] == "failed" for r in receipts)


def test_a_signer_vouched_for_by_a_verified_attestation_passes(teelog_node, data_dir):
    node = teelog_node()
    node.chat("vouched")
    with Collector(_config(data_dir, node.url), clock=PinnedClock(NEAR_MODEL_AT)) as collector:
        collector.attestation_pollers["own"].poll(force=True)
        # Its report (index 0) named the key but was unverifiable (no TEE here). Mark it as
        # vouched for, as the recorder does when an attestation verifies.
        address = node.journal.page(0, 1)[0][0].ecdsa.signing_address
        with Session(collector.log.engine) as session:
            signer = session.get(CollectorSigner, ("own", address.lower()))
            assert (signer.named_index, signer.named_status) == (0, "unverifiable")
            assert signer.log_index is None
            signer.status, signer.log_index, signer.observed_at = "verified", 0, NEAR_MODEL_AT
            session.add(signer)
            session.commit()
        collector.receipt_pollers["own"].poll(force=True)
        (receipt,) = _receipts(collector.log)
    signer = next(c for c in receipt["checks"] if c["name"] == "receipt.signer")
    assert signer["status"] == "pass" and "attestation #0" in signer["detail"]
    assert "not attested: ed25519" in signer["detail"]
    assert receipt["attestation_index"] == 0
    assert receipt["status"] == "verified"


@pytest.mark.slow
def test_scheduled_collector_and_node_restarted_under_traffic_log_each_receipt_once(
    teelog_node, data_dir, tmp_path
):
    journal = tmp_path / "journal.sqlite"
    node = teelog_node(journal)
    stop = threading.Event()
    current = {"node": node}
    sent = [0]  # chats the node answered

    def traffic():
        n = 0
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):  # the node restarts under us
                current["node"].chat(f"message {n}")
                sent[0] += 1
            n += 1
            time.sleep(0.02)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()

    def run_collector(url: str, until_sent: int) -> None:
        """Collect while traffic flows, until the node has answered `until_sent` chats in all.

        Bounded by answers, not by seconds, so a loaded machine makes the test slower,
        never weaker.
        """
        config = collector_config(
            data_dir, [{"name": "own", "url": url, "interval": "0.2s",
                        "receipts_interval": "0.1s", "receipts_batch": 7}],
        )
        collector = Collector(config)
        collector.start()
        deadline = time.monotonic() + 60
        while sent[0] < until_sent and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a few more receipt polls while traffic goes on
        collector.close()  # stops mid-stream: the node keeps serving

    run_collector(node.url, 15)
    node.stop()
    node = teelog_node(journal)  # same journal, new keys, new port
    current["node"] = node
    run_collector(node.url, 30)
    stop.set()
    sender.join()
    with Collector(_config(data_dir, node.url)) as collector:  # drain what is left
        collector.run_once()
        seqs = Counter(r["seq"] for r in _receipts(collector.log))
    journaled = [r.seq for r in node.journal.page(0, 100_000)[0]]
    assert len(journaled) > 20
    assert sorted(seqs) == journaled  # none lost
    assert set(seqs.values()) == {1}  # none twice
