"""Measurement changes end to end: a node switching what it runs → one change event with both
values and both log indexes → exactly one signed webhook, and the Atom feeds."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from xml.etree import ElementTree as ET

from collector_fakes import (
    NEAR_MODEL_AT,
    PinnedClock,
    collector_config,
    vllm_proxy_report_from_near,
    vllm_proxy_report_from_sample,
)
from sqlmodel import Session, select
from teelog.collector import Collector
from teelog.collector.models import CollectorChange, CollectorChangeEvent
from teelog.collector.webhooks import SIGNATURE_HEADER, deliveries, verify_signature
from teelog.explorer import create_app

SECRET = "whsec-test-0123"
ATOM_NS = "http://www.w3.org/2005/Atom"


def _setup(fake_node, data_dir, receiver, monkeypatch, **hook):
    node = fake_node()
    node.serve("/v1/attestation/report", vllm_proxy_report_from_sample())
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = collector_config(
        data_dir,
        [{"name": "n1", "url": node.url, "interval": "5s", "receipts": False}],
        webhooks=[{"url": receiver.url, "secret_env": "HOOK_SECRET", **hook}],
    )
    return node, config


def test_a_changed_compose_hash_gives_exactly_one_signed_webhook(
    fake_node, data_dir, receiver, monkeypatch
):
    node, config = _setup(fake_node, data_dir, receiver, monkeypatch)
    with Collector(config, clock=PinnedClock(NEAR_MODEL_AT), webhook_backoff=0.05) as collector:
        first = collector.run_once().attestations[0]
        assert first.changes == 0 and receiver.received == []
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())  # redeployed
        second = collector.run_once().attestations[0]
        third = collector.run_once().attestations[0]  # same again: no new event
        engine = collector.log.engine

    assert second.changes > 0 and third.changes == 0
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    now = NEAR_MODEL_AT.timestamp()  # the collector's (pinned) clock signs the timestamp
    assert verify_signature(SECRET.encode(), headers[SIGNATURE_HEADER], body, now=now)
    assert not verify_signature(b"wrong", headers[SIGNATURE_HEADER], body, now=now)
    assert not verify_signature(SECRET.encode(), headers[SIGNATURE_HEADER], body + b" ", now=now)
    assert headers["Teelog-Event"] == "measurement.changed"
    event = json.loads(body)
    assert (event["node"], event["old_index"], event["new_index"]) == (
        "n1", first.index, second.index,
    )
    fields = {c["field"]: c for c in event["changes"]}
    compose = fields["model[openai/gpt-oss-120b].compose_hash"]
    assert compose["old"] == "62dd36d2" + compose["old"][8:]  # the sample CVM's compose hash
    assert compose["new"].startswith("242a6272")
    assert "model[openai/gpt-oss-120b].signing_address" in fields
    assert "model[openai/gpt-oss-120b].rtmr3" in fields

    with Session(engine) as session:
        (stored,) = session.exec(select(CollectorChangeEvent)).all()
        rows = session.exec(select(CollectorChange)).all()
    assert (stored.old_index, stored.new_index) == (first.index, second.index)
    by_field = {r.field: r for r in rows}
    assert json.loads(by_field["model[openai/gpt-oss-120b].compose_hash"].new) == compose["new"]
    assert {(r.old_index, r.new_index) for r in rows} == {(first.index, second.index)}
    (delivery,) = deliveries(engine)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_receiver_down_loses_nothing_and_gets_the_event_later(
    fake_node, data_dir, receiver, monkeypatch
):
    node, config = _setup(fake_node, data_dir, receiver, monkeypatch)
    clock = PinnedClock(NEAR_MODEL_AT)
    receiver.status = 503
    with Collector(config, clock=clock, webhook_backoff=10) as collector:
        collector.run_once()
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        collector.run_once()
        (row,) = deliveries(collector.log.engine)
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
        assert collector.outbox.deliver_due() == 0  # not due yet: backing off
        receiver.status = 200
        clock.advance(11)
        assert collector.outbox.deliver_due() == 1
        (row,) = deliveries(collector.log.engine)
    assert (row.status, row.attempts) == ("delivered", 2)
    assert len(receiver.received) == 1


def test_final_failure_is_recorded(fake_node, data_dir, receiver, monkeypatch):
    node, config = _setup(fake_node, data_dir, receiver, monkeypatch, max_attempts=3)
    clock = PinnedClock(NEAR_MODEL_AT)
    receiver.status = 500
    with Collector(config, clock=clock, webhook_backoff=1) as collector:
        collector.run_once()
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        collector.run_once()
        for _ in range(5):
            clock.advance(100)
            collector.outbox.deliver_due()
        (row,) = deliveries(collector.log.engine)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")


def test_webhooks_only_get_their_nodes(fake_node, data_dir, receiver, monkeypatch):
    node = fake_node()
    node.serve("/v1/attestation/report", vllm_proxy_report_from_sample())
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = collector_config(
        data_dir,
        [
            {"name": "n1", "url": node.url, "receipts": False},
            {"name": "n2", "url": node.url, "receipts": False},
        ],
        webhooks=[{"url": receiver.url, "secret_env": "HOOK_SECRET", "nodes": ["n2"]}],
    )
    with Collector(config, clock=PinnedClock(NEAR_MODEL_AT)) as collector:
        collector.run_once()
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        summary = collector.run_once()
    assert all(o.changes for o in summary.attestations)
    assert [json.loads(b)["node"] for _, b in receiver.received] == ["n2"]


def test_test_event_is_signed_and_sent_now(fake_node, data_dir, receiver, monkeypatch):
    _, config = _setup(fake_node, data_dir, receiver, monkeypatch)
    with Collector(config) as collector:  # the system clock
        results = collector.outbox.send_test_event()
    assert results[receiver.url].ok
    ((headers, body),) = receiver.received
    assert json.loads(body)["type"] == "test"
    assert verify_signature(SECRET.encode(), headers[SIGNATURE_HEADER], body)
    stale = time.time() + 600
    assert not verify_signature(SECRET.encode(), headers[SIGNATURE_HEADER], body, now=stale)


def test_a_change_the_collector_detects_is_in_the_explorers_atom_feeds(
    fake_node, data_dir, receiver, monkeypatch
):
    node, config = _setup(fake_node, data_dir, receiver, monkeypatch)
    with Collector(config, clock=PinnedClock(NEAR_MODEL_AT)) as collector:
        collector.run_once()
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        new_index = collector.run_once().attestations[0].index
        app = create_app(data_dir, log=collector.log)
        app.extensions["teelog"].indexer.catch_up()
        client = app.test_client()
        feeds = {
            path: ET.fromstring(client.get(path).data)
            for path in ("/feeds/changes.atom", "/feeds/nodes/n1/changes.atom")
        }
    ns = {"a": ATOM_NS}
    for root in feeds.values():
        (entry,) = root.findall("a:entry", ns)
        assert entry.find("a:title", ns).text.startswith("n1: ")
        assert entry.find("a:link", ns).get("href").endswith(f"/entries/{new_index}")
        content = entry.find("a:content", ns).text
        assert "model[openai/gpt-oss-120b].compose_hash: 62dd36d2" in content
        assert "-> 242a6272" in content


def test_scheduled_collector_delivers_webhooks_by_itself(
    fake_node, data_dir, receiver, monkeypatch
):
    node, config = _setup(fake_node, data_dir, receiver, monkeypatch)
    collector = Collector(config, clock=PinnedClock(NEAR_MODEL_AT))
    with collector:
        collector.run_once()
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        collector.attestation_pollers["n1"].poll(force=True)
        collector.start()
        deadline = time.monotonic() + 5
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(receiver.received) == 1


def test_an_undelivered_event_survives_a_collector_restart(
    fake_node, data_dir, receiver, monkeypatch
):
    node, config = _setup(fake_node, data_dir, receiver, monkeypatch)
    receiver.status = 503
    with Collector(config, clock=PinnedClock(NEAR_MODEL_AT), webhook_backoff=0.01) as collector:
        collector.run_once()
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        collector.run_once()
    assert receiver.received == []
    receiver.status = 200
    later = PinnedClock(NEAR_MODEL_AT + timedelta(minutes=1))
    with Collector(config, clock=later) as collector:  # a new collector process
        assert collector.outbox.deliver_due() == 1
    ((_, body),) = receiver.received
    assert json.loads(body)["type"] == "measurement.changed"
