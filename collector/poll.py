"""One attestation poll, and the recording step it shares with ``teelog import``.

A poll: fresh random 32-byte nonce → fetch the report → verify it at the time of the poll →
store the exact report bytes and the collateral used as blobs → append an ``attestation``
entry → compare with the node's previous attestation → store change events (both values, both
log indexes) and queue their webhooks, in one database transaction.

Reports that fail verification are logged all the same: the log records what nodes claimed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from teelog.attestation.measurements import Change
from teelog.entries.attestation import attestation_entry, encode_attestation
from teelog.entries.changes import compare_summaries, summary_of
from teelog.entries.verdict import Verification

from .appender import GroupAppender
from .clients import NodeError, Report, ReportClient
from .config import NodeConfig
from .health import record_failure, record_success
from .models import (
    CollectorChange,
    CollectorChangeEvent,
    CollectorNode,
    CollectorSigner,
    StateDB,
)
from .webhooks import WebhookOutbox

logger = logging.getLogger("teelog.collector")

Clock = Callable[[], datetime]


class LogLike(Protocol):
    """What the collector needs of :class:`teelog.log.Log` (docs/architecture.md)."""

    engine: Engine

    def append(self, entry: bytes) -> int: ...

    def append_many(self, entries: list[bytes]) -> list[int]: ...

    @property
    def blobs(self) -> Any: ...


# (the report: its exact bytes (or parsed JSON), the nonce sent or None, verification time)
Verify = Callable[[Any, str | None, datetime], Verification]


def system_clock() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """``moment`` as the aware UTC ``datetime`` the state tables store (naive means UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class BlobWriter:
    """Puts blobs into the log's store from many threads.

    Writes are serialised (two threads storing the same new blob would otherwise race on the
    store's temporary file name) and digests already stored are remembered, so evidence that
    repeats every poll (collateral, an unchanged report) is hashed but not rewritten.
    """

    def __init__(self, store: Any, *, remember: int = 4096) -> None:
        self.store = store
        self.remember = remember
        self._known: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest in self._known:
                self._known.move_to_end(digest)
                return digest
            stored = self.store.put(data)
            assert stored == digest
            self._known[digest] = None
            if len(self._known) > self.remember:
                self._known.popitem(last=False)
        return digest


@dataclass(frozen=True, slots=True)
class Recorded:
    """An appended attestation entry and what came of comparing it with the previous one."""

    index: int
    status: str
    changes: tuple[Change, ...]
    event_id: int | None


class Recorder:
    """Verifies a fetched (or imported) report and records it: blobs, entry, state, changes.

    Thread-safe across nodes. Calls for one node must not overlap (the scheduler runs at most
    one job per node), so "the previous attestation" is well defined.
    """

    def __init__(
        self, log: LogLike, verify: Verify, outbox: WebhookOutbox, db: StateDB | None = None
    ) -> None:
        self.log = log
        self.verify = verify
        self.outbox = outbox
        self.db = db if db is not None else StateDB(log.engine)
        self.appender = GroupAppender(log, self.db)
        # CPU-bound steps (JSON parsing, verification, entry building) hold the GIL. With dozens
        # of poll threads doing them at once, a thread that only needs the GIL between two
        # fsyncs (the log append, a state commit) queues behind all of them, and the log's
        # batches shrink to a trickle. So at most one thread per core runs CPU-bound steps;
        # the others wait on this semaphore without contending for the GIL.
        self.cpu_gate = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
        self.blobs = BlobWriter(log.blobs)

    def record(
        self,
        *,
        node: str,
        url: str | None,
        raw: bytes,
        doc: Any,
        format: str | None,
        source: str,
        observed_at: datetime,
        verified_at: datetime,
        nonce: str | None,
    ) -> Recorded:
        """Verify the report (``raw``, parsed as ``doc``) at ``verified_at`` and append its
        ``attestation`` entry; return it."""
        if getattr(self.verify, "runs_elsewhere", False):
            verification = self.verify(raw, nonce, verified_at)  # waits without the GIL
        else:
            with self.cpu_gate:
                verification = self.verify(raw, nonce, verified_at)
        blobs = self.blobs
        report_blob = blobs.put(raw)
        collateral = sorted(verification.collateral_used.items())
        collateral_blobs = [blobs.put(data) for _, data in collateral]
        with self.cpu_gate:
            entry = attestation_entry(
                node=node,
                url=url,
                format=format,
                source=source,
                observed_at=observed_at,
                verified_at=verified_at,
                nonce=nonce,
                attestations=verification.attestations,
                report_blob=report_blob,
                collateral_blobs=collateral_blobs,
            )
            data = encode_attestation(entry, blobs.put)
            summary = summary_of(entry)

        def bookkeeping(session: Session, indexes: list[int]) -> Any:
            with session.no_autoflush:  # one flush at the end, not one per lookup
                return self._update_state(
                    session, node, url, format, indexes[0], summary, utc(observed_at),
                    polled=source == "poll",
                )

        (index,), (changes, event_id) = self.appender.append_with([data], bookkeeping)
        return Recorded(index=index, status=entry["status"], changes=changes, event_id=event_id)

    def _update_state(
        self,
        session: Session,
        node: str,
        url: str | None,
        format: str | None,
        index: int,
        summary: dict[str, Any],
        moment: datetime,
        *,
        polled: bool,
    ) -> tuple[tuple[Change, ...], int | None]:
        """Compare with the previous attestation, store changes, vouch for signers and (for a
        poll) record the node's success, in the transaction of the append's batch."""
        state = session.get(CollectorNode, node) or CollectorNode(name=node, url=url or "")
        if polled:
            state.last_attempt_at = moment
            record_success(state, moment)
            state.polls += 1
        if url:
            state.url = url
        if format:
            state.format = format
        changes: tuple[Change, ...] = ()
        event_id: int | None = None
        previous_index = state.last_attestation_index
        if state.last_attestation is not None and previous_index is not None:
            changes = tuple(compare_summaries(json.loads(state.last_attestation), summary))
        if changes and previous_index is not None:
            event = CollectorChangeEvent(
                node=node,
                old_index=previous_index,
                new_index=index,
                time=moment,
                summary=", ".join(c.field for c in changes)[:1000],
            )
            session.add(event)
            session.flush()
            event_id = event.id
            for change in changes:
                session.add(
                    CollectorChange(
                        event_id=event.id,
                        node=node,
                        field=change.field,
                        old=json.dumps(change.old),
                        new=json.dumps(change.new),
                        old_index=previous_index,
                        new_index=index,
                        time=moment,
                    )
                )
            self.outbox.enqueue(session, event, changes)
        state.last_attestation_index = index
        state.last_attestation_status = summary["status"]
        state.last_attestation = json.dumps(summary, sort_keys=True)
        # Every attestation that names a signer is recorded with its status, so that
        # receipt.signer can tell "vouched for by a genuine TEE" from "named only by a
        # report that could not be verified" (a dev node) and from "named by nothing".
        named = [
            (item["signing_address"].lower(), item)
            for item in summary["attestations"]
            if isinstance(item.get("signing_address"), str)
        ]
        if named:
            keys = sorted({key for key, _ in named})
            signers = {
                s.signing_address: s
                for s in session.exec(
                    select(CollectorSigner).where(
                        CollectorSigner.node == node, CollectorSigner.signing_address.in_(keys)
                    )
                )
            }
            for key, item in named:
                self._vouch(session, signers, node, key, item, index, moment)
        session.add(state)
        session.flush()
        return changes, event_id

    @staticmethod
    def _vouch(
        session: Session,
        signers: dict[str, CollectorSigner],
        node: str,
        key: str,
        item: dict[str, Any],
        index: int,
        moment: datetime,
    ) -> None:
        """Record that attestation ``index`` named address ``key`` (lowercase), and vouched
        for it if its status is ``verified`` or ``warning``. Older indexes never replace newer
        ones (an import of an archived report)."""
        status = item["status"]
        signer = signers.get(key)
        if signer is None:
            signer = signers[key] = CollectorSigner(
                node=node, signing_address=key, named_index=index, named_status=status,
                named_at=moment,
            )
        if index >= signer.named_index:
            signer.named_index, signer.named_status, signer.named_at = index, status, moment
            signer.signing_algo = item.get("signing_algo")
        if status in ("verified", "warning") and (
            signer.log_index is None or index >= signer.log_index
        ):
            signer.status, signer.log_index, signer.observed_at = status, index, moment
        session.add(signer)


class CollectorFault(NodeError):
    """A poll that failed on the collector's side (the log or the database), not the node's."""

    kind = "internal"


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one scheduled attestation poll did (``skipped`` while backing off)."""

    node: str
    index: int | None = None
    status: str | None = None
    changes: int = 0
    error: NodeError | None = None
    skipped: bool = False


class AttestationPoller:
    """Polls one node's attestation report: the scheduler's per-node job."""

    def __init__(
        self, node: NodeConfig, client: ReportClient, recorder: Recorder, clock: Clock
    ) -> None:
        self.node = node
        self.client = client
        self.recorder = recorder
        self.clock = clock
        # This poller is the only writer of its node's health in this process: the next due
        # time is kept in memory after the first read (no transaction per scheduler tick).
        self._due: datetime | None = None
        self._loaded = False

    def poll(self, *, force: bool = False) -> PollOutcome:
        """Poll once unless backing off (``force`` ignores the backoff). Never raises NodeError."""
        node = self.node
        started = self.clock()
        if not self._loaded:
            with self.recorder.db.session() as session:
                state = session.get(CollectorNode, node.name)
                if state is None:
                    state = CollectorNode(name=node.name, url=node.url)
                    session.add(state)
                    session.commit()
                self._due = state.next_attempt_at
                self._loaded = True
        if not force and self._due is not None and utc(started) < self._due:
            return PollOutcome(node=node.name, skipped=True)
        nonce = secrets.token_hex(32)
        try:
            report: Report = self.client.fetch_report(nonce)
            observed = self.clock()
            recorded = self.recorder.record(
                node=node.name,
                url=node.url,
                raw=report.raw,
                doc=report.doc,
                format=report.format,
                source="poll",
                observed_at=observed,
                verified_at=observed,
                nonce=nonce,
            )
        except NodeError as exc:
            self._failed(exc)
            return PollOutcome(node=node.name, error=exc)
        except Exception as exc:  # our side failed (log, database): keep polling the others
            logger.exception("node %s: recording the poll failed", node.name)
            fault = CollectorFault(f"recording failed: {type(exc).__name__}: {exc}")
            self._failed(fault)
            return PollOutcome(node=node.name, error=fault)
        self._due = None
        return PollOutcome(
            node=node.name, index=recorded.index, status=recorded.status,
            changes=len(recorded.changes),
        )

    def _failed(self, exc: NodeError) -> None:
        now = self.clock()
        logger.warning("node %s: %s: %s", self.node.name, exc.kind, exc.message)
        with self.recorder.db.session() as session:
            state = session.get(CollectorNode, self.node.name)
            assert state is not None
            state.last_attempt_at = utc(now)
            state.polls += 1
            self._due = record_failure(state, exc, utc(now), self.node, self.node.interval)
            session.add(state)
            session.commit()
