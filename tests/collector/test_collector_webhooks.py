"""Webhook signatures and delivery to untrusted targets; the Atom feed with hostile values."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session
from teelog.attestation.measurements import Change
from teelog.collector.config import WebhookConfig
from teelog.collector.models import CollectorChange, CollectorChangeEvent, create_tables
from teelog.collector.webhooks import (
    WebhookOutbox,
    deliveries,
    post_event,
    retry_delay,
    sign,
    signature_header,
    verify_signature,
)

T = datetime(2026, 3, 11, 3, 33, 20, tzinfo=UTC)


def test_signature_header_round_trip_and_failures():
    body = b'{"a":1}'
    header = signature_header(b"k", body, 1_000_000)
    assert header == f"t=1000000,v1={sign(b'k', 1_000_000, body)}"
    assert verify_signature(b"k", header, body, now=1_000_100)
    assert not verify_signature(b"k", header, body, now=1_000_400)  # too old: replay refused
    assert not verify_signature(b"k2", header, body, now=1_000_000)
    assert not verify_signature(b"k", header, b'{"a":2}', now=1_000_000)
    assert not verify_signature(b"k", "v1=" + sign(b"k", 1_000_000, body), body, now=1_000_000)
    assert not verify_signature(b"k", "t=1000000", body, now=1_000_000)
    # During a secret rotation a sender may include several v1 values.
    rotated = f"{header},v1={'0' * 64}"
    assert verify_signature(b"k", rotated, body, now=1_000_000)


def test_the_mac_covers_the_timestamp():
    body = b"{}"
    header = signature_header(b"k", body, 1_000_000)
    moved = header.replace("t=1000000", "t=1000050")
    assert not verify_signature(b"k", moved, body, now=1_000_050)


def test_retry_delays_grow_exponentially_and_are_capped():
    assert [retry_delay(n, 5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay(30, 5) == 3600


def test_a_redirecting_receiver_is_not_followed(fake_node):
    target, elsewhere = fake_node(), fake_node()
    target.routes["/hook"] = lambda *_: (307, {"Location": elsewhere.url + "/hook"}, b"")
    hook = WebhookConfig(url=target.url + "/hook", timeout=2)
    attempt = post_event(hook, b"{}", event_type="test", delivery_id="d", now=time.time())
    assert not attempt.ok and attempt.status_code == 307
    assert "redirects are not followed" in attempt.error
    assert elsewhere.requests == []


def test_a_hanging_receiver_times_out(fake_node):
    target = fake_node()
    target.routes["/hook"] = lambda *_: (time.sleep(3), (200, {}, b""))[1]
    started = time.monotonic()
    hook = WebhookConfig(url=target.url + "/hook", timeout=0.3)
    attempt = post_event(hook, b"{}", event_type="test", delivery_id="d", now=time.time())
    assert not attempt.ok and attempt.status_code is None and "Timeout" in attempt.error
    assert time.monotonic() - started < 2


def test_a_receiver_answering_forever_is_read_only_up_to_the_limit(fake_node):
    target = fake_node()

    def endless(*_):
        return 200, {}, (b"x" * 65536 for _ in range(100_000))

    target.routes["/hook"] = endless
    hook = WebhookConfig(url=target.url + "/hook", timeout=5)
    attempt = post_event(hook, b"{}", event_type="test", delivery_id="d", now=time.time())
    assert attempt.ok


def _engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    create_tables(engine)
    return engine


def _store_event(engine, outbox: WebhookOutbox, node="n1", value="<b>&\"x\"</b>"):
    changes = [Change("model.compose_hash", "aa", value)]
    with Session(engine) as session:
        event = CollectorChangeEvent(node=node, old_index=3, new_index=7, time=T, summary="x")
        session.add(event)
        session.flush()
        for c in changes:
            session.add(CollectorChange(
                event_id=event.id, node=node, field=c.field, old=json.dumps(c.old),
                new=json.dumps(c.new), old_index=3, new_index=7, time=T,
            ))
        outbox.enqueue(session, event, changes)
        session.commit()


def test_an_unconfigured_webhook_row_fails_for_good(tmp_path):
    engine = _engine(tmp_path)
    _store_event(engine, WebhookOutbox(
        engine, [WebhookConfig(url="http://127.0.0.1:9/hook")], clock=lambda: T,
    ))
    # The subscription was removed from the configuration before delivery.
    WebhookOutbox(engine, [], clock=lambda: T).deliver_due()
    (row,) = deliveries(engine)
    assert (row.status, row.last_error) == ("failed", "webhook no longer configured")


@pytest.mark.parametrize("node_filter", [(), ("n1",)])
def test_outbox_rows_are_created_in_the_event_transaction(tmp_path, node_filter):
    engine = _engine(tmp_path)
    outbox = WebhookOutbox(
        engine, [WebhookConfig(url="http://127.0.0.1:9/a", nodes=node_filter),
                 WebhookConfig(url="http://127.0.0.1:9/b", nodes=("other",))],
        clock=lambda: T,
    )
    _store_event(engine, outbox)
    rows = deliveries(engine)
    assert [r.url for r in rows] == ["http://127.0.0.1:9/a"]
    body = json.loads(rows[0].body)
    assert body["changes"] == [{"field": "model.compose_hash", "old": "aa",
                                "new": "<b>&\"x\"</b>"}]
    assert (body["old_index"], body["new_index"], body["time"]) == (3, 7, "2026-03-11T03:33:20Z")
