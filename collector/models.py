"""The collector's state: SQLModel tables in the log's database (``Log.engine``).

Every table is prefixed ``collector_``. The explorer reads them (read-only) to show node health
and change events. Times are aware UTC ``datetime`` values (SQLModel's UTC column type).

Invariants:
- ``collector_receipt`` has one row per ``(node, node_instance, seq)``; its ``entry`` bytes are
  written *before* the log append and reused on retry, so a crash between the append and the
  bookkeeping re-appends identical bytes, which the log answers with the existing index.
- A ``collector_receipt_cursor`` only moves past a receipt once that receipt's row has a
  ``log_index`` (same transaction).
- ``collector_webhook_delivery`` is a durable outbox: a row exists for every (event, webhook)
  pair from the moment the event is stored, until it is delivered or finally failed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel


def utcnow() -> datetime:
    """Now, as the aware UTC ``datetime`` these tables store."""
    return datetime.now(UTC)


class PollHealth(SQLModel):
    """The health fields of a poll (an attestation poll, a receipts feed), set only by
    ``collector.health``: the last success and error, the failure count, the next attempt."""

    last_success_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    last_error_kind: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = None


class CollectorNode(PollHealth, table=True):
    """One configured node: attestation-poll health and the last attestation seen."""

    __tablename__ = "collector_node"

    name: str = Field(primary_key=True)
    url: str
    format: str | None = None  # the detected report format
    last_attempt_at: datetime | None = None
    polls: int = 0
    last_attestation_index: int | None = None
    last_attestation_status: str | None = None
    # Compact JSON of the last attestation entry's comparable part (see entries.changes.summary_of).
    last_attestation: str | None = Field(default=None, sa_column=Column(Text))


class CollectorReceiptCursor(PollHealth, table=True):
    """Where the receipts feed of a node was read up to, and that feed's health."""

    __tablename__ = "collector_receipt_cursor"

    node: str = Field(primary_key=True)
    node_instance: str | None = None
    last_seq: int = 0
    receipts: int = 0  # receipts appended for this node, all instances
    missing: int = 0  # sequence numbers the node no longer had when asked (retention)
    feed_available: bool = True


class CollectorReceipt(SQLModel, table=True):
    """One receipt taken from a feed: its entry bytes and, once appended, its log index."""

    __tablename__ = "collector_receipt"
    __table_args__ = (UniqueConstraint("node", "node_instance", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    node: str = Field(index=True)
    node_instance: str
    seq: int
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    log_index: int | None = None


class CollectorSigner(SQLModel, table=True):
    """A signing address a node's attestations named.

    ``log_index``/``status``/``observed_at``: the latest attestation that *vouched* for it
    (status ``verified`` or ``warning``), or ``None`` if none did. ``named_*``: the latest
    attestation naming it, whatever its status (a node without a TEE names its key in an
    ``unverifiable`` attestation).
    """

    __tablename__ = "collector_signer"

    node: str = Field(primary_key=True)
    signing_address: str = Field(primary_key=True)  # lowercase
    signing_algo: str | None = None
    status: str | None = None  # verified | warning
    log_index: int | None = None
    observed_at: datetime | None = None
    named_index: int
    named_status: str
    named_at: datetime


class CollectorChangeEvent(SQLModel, table=True):
    """One comparison of a node's attestation with its previous one that found changes."""

    __tablename__ = "collector_change_event"

    id: int | None = Field(default=None, primary_key=True)
    node: str = Field(index=True)
    old_index: int
    new_index: int = Field(unique=True)
    time: datetime
    summary: str = Field(sa_column=Column(Text, nullable=False))


class CollectorChange(SQLModel, table=True):
    """One changed field; ``old``/``new`` are JSON text (strings, lists, null)."""

    __tablename__ = "collector_change"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="collector_change_event.id", index=True)
    node: str = Field(index=True)
    field: str
    old: str | None = Field(default=None, sa_column=Column(Text))
    new: str | None = Field(default=None, sa_column=Column(Text))
    old_index: int
    new_index: int
    time: datetime


class CollectorWebhookDelivery(SQLModel, table=True):
    """Outbox row: one change event (or test event) to one webhook URL."""

    __tablename__ = "collector_webhook_delivery"
    __table_args__ = (UniqueConstraint("event_id", "url"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int | None = Field(default=None, index=True)  # None for a test event
    url: str
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    max_attempts: int = 8
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_status_code: int | None = None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None


TABLES = (
    CollectorNode,
    CollectorReceiptCursor,
    CollectorReceipt,
    CollectorSigner,
    CollectorChangeEvent,
    CollectorChange,
    CollectorWebhookDelivery,
)


class StateDB:
    """Sessions on the collector's tables, one at a time per process.

    The log's SQLite engine begins every transaction with ``BEGIN IMMEDIATE`` (the write
    lock). Dozens of poll threads opening transactions at once would wait on each other in
    SQLite's busy handler, which sleeps in steps of up to 100 ms; measured with 50 nodes, each
    commit then took ~200 ms. Taking this lock first (the group appender takes it too, around
    the log append) turns that into an in-process queue that hands over at once.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.lock, Session(self.engine) as session:
            yield session


def create_tables(engine: Engine) -> None:
    """Create the collector's tables if missing (other packages' tables are left alone)."""
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in TABLES])
