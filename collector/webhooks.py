"""Webhooks: change events POSTed as JSON, signed with HMAC-SHA256, from a durable outbox.

Signature scheme (a receiver checks it with :func:`verify_signature`, see docs/collector.md)::

    Teelog-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is inside the MAC so a captured request cannot be replayed later than the
receiver's tolerance. ``Teelog-Event`` names the event type and ``Teelog-Delivery`` a unique
id per (event, URL), so receivers can drop duplicates (delivery is at least once).

Delivery: every event gets one outbox row per subscribed URL in the same transaction that
stores the event, so a receiver that is down loses nothing. Failed attempts are retried with
exponential backoff (``base · 2^(attempt-1)``, capped at one hour) up to ``max_attempts``;
then the row is marked ``failed`` with the last error. Targets are untrusted: only http(s),
redirects are not followed, every request has a timeout, response bodies are read to 64 KiB.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from teelog.attestation.times import rfc3339

from .config import WebhookConfig
from .models import CollectorChangeEvent, CollectorWebhookDelivery, StateDB

logger = logging.getLogger("teelog.collector.webhooks")

SIGNATURE_HEADER = "Teelog-Signature"
EVENT_HEADER = "Teelog-Event"
DELIVERY_HEADER = "Teelog-Delivery"
MAX_RECEIVER_BODY = 64 * 1024
MAX_BACKOFF = 3600.0
DEFAULT_TOLERANCE = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Teelog-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(
    secret: bytes,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Receiver side: whether ``header`` is a valid, fresh signature of ``body``.

    Accepts several ``v1=`` values (sent during a secret rotation) and rejects timestamps more
    than ``tolerance`` seconds away from ``now``. Compares in constant time.
    """
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            macs.append(value)
    if timestamp is None or not macs:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, mac) for mac in macs)


def event_body(event: CollectorChangeEvent, changes: Sequence[Any]) -> bytes:
    """The JSON body of a ``measurement.changed`` event (sorted keys, compact, UTF-8)."""
    doc = {
        "type": "measurement.changed",
        "id": event.id,
        "node": event.node,
        "time": rfc3339(event.time),
        "old_index": event.old_index,
        "new_index": event.new_index,
        "changes": [c.to_json() for c in changes],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_event_body(now: datetime) -> bytes:
    """The body of a ``test`` event: lets an operator check a receiver and its secret."""
    doc = {
        "type": "test",
        "id": None,
        "time": rfc3339(now),
        "message": "teelog webhook test event",
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one POST: ``ok`` for a 2xx answer."""

    ok: bool
    status_code: int | None
    error: str | None


def post_event(
    hook: WebhookConfig,
    body: bytes,
    *,
    event_type: str,
    delivery_id: str,
    now: float,
    transport: httpx.BaseTransport | None = None,
) -> Attempt:
    """POST ``body`` to ``hook.url`` signed with its secret; never raises for network trouble."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "teelog-webhooks/1",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature_header(hook.secret(), body, int(now)),
    }
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(hook.timeout),
                follow_redirects=False,
                transport=transport,
                trust_env=False,
            ) as client,
            client.stream("POST", hook.url, content=body, headers=headers) as response,
        ):
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RECEIVER_BODY:
                    break
            if 200 <= response.status_code < 300:
                return Attempt(True, response.status_code, None)
            note = " (redirects are not followed)" if response.is_redirect else ""
            return Attempt(False, response.status_code, f"HTTP {response.status_code}{note}")
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:500])


def retry_delay(attempts: int, base: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``base · 2^(attempts-1)``, at most an hour."""
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


class WebhookOutbox:
    """Queues change events for every subscribed webhook and delivers them with retries."""

    def __init__(
        self,
        engine: Engine,
        hooks: Sequence[WebhookConfig],
        *,
        clock: Callable[[], datetime],
        backoff_base: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        db: StateDB | None = None,
    ) -> None:
        self.engine = engine
        self.db = db if db is not None else StateDB(engine)
        self.hooks = {h.url: h for h in hooks}
        self.clock = clock
        self.backoff_base = backoff_base
        self.transport = transport

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def enqueue(self, session: Session, event: CollectorChangeEvent, changes: Sequence[Any]) -> int:
        """Add an outbox row per webhook subscribed to ``event.node`` (caller commits)."""
        body = event_body(event, changes)
        now = self._now()
        count = 0
        for hook in self.hooks.values():
            if not hook.wants(event.node):
                continue
            session.add(
                CollectorWebhookDelivery(
                    event_id=event.id,
                    url=hook.url,
                    body=body,
                    max_attempts=hook.max_attempts,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            count += 1
        return count

    def deliver_due(self, *, limit: int = 100, workers: int = 4) -> int:
        """Attempt every due delivery (at most ``limit``); return how many succeeded."""
        now = self._now()
        with self.db.session() as session:
            rows = list(
                session.exec(
                    select(CollectorWebhookDelivery)
                    .where(CollectorWebhookDelivery.status == "pending")
                    .where(CollectorWebhookDelivery.next_attempt_at <= now)
                    .order_by(CollectorWebhookDelivery.id)
                    .limit(limit)
                )
            )
        if not rows:
            return 0
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rows)))) as pool:
            results = list(pool.map(self._attempt, rows))
        return sum(1 for ok in results if ok)

    def _attempt(self, row: CollectorWebhookDelivery) -> bool:
        hook = self.hooks.get(row.url)
        if hook is None:
            attempt = Attempt(False, None, "webhook no longer configured")
            final = True
        else:
            attempt = post_event(
                hook,
                row.body,
                event_type="measurement.changed",
                delivery_id=f"{row.event_id}-{row.id}",
                now=self.clock().timestamp(),
                transport=self.transport,
            )
            final = False
        now = self._now()
        with self.db.session() as session:
            current = session.get(CollectorWebhookDelivery, row.id)
            if current is None or current.status != "pending":
                return False
            current.attempts += 1
            current.last_status_code = attempt.status_code
            if attempt.ok:
                current.status = "delivered"
                current.delivered_at = now
                current.last_error = None
            else:
                current.last_error = attempt.error
                if final or current.attempts >= current.max_attempts:
                    current.status = "failed"
                    logger.warning(
                        "webhook %s: event %s failed for good after %d attempts: %s",
                        row.url, row.event_id, current.attempts, attempt.error,
                    )
                else:
                    delay = retry_delay(current.attempts, self.backoff_base)
                    current.next_attempt_at = now + timedelta(seconds=delay)
            session.add(current)
            session.commit()
        return attempt.ok

    def send_test_event(self, url: str | None = None) -> dict[str, Attempt]:
        """POST a signed ``test`` event now to ``url`` (or every webhook); not queued."""
        now = self.clock()
        body = test_event_body(now)
        out: dict[str, Attempt] = {}
        for hook in self.hooks.values():
            if url is not None and hook.url != url:
                continue
            out[hook.url] = post_event(
                hook, body, event_type="test", delivery_id=f"test-{int(now.timestamp())}",
                now=now.timestamp(), transport=self.transport,
            )
        return out


def deliveries(engine: Engine, *, event_id: int | None = None) -> list[CollectorWebhookDelivery]:
    """Outbox rows (all, or of one event), oldest first."""
    with Session(engine) as session:
        query = select(CollectorWebhookDelivery).order_by(CollectorWebhookDelivery.id)
        if event_id is not None:
            query = query.where(CollectorWebhookDelivery.event_id == event_id)
        return list(session.exec(query))
