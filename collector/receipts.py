"""Receipts: a node's signed responses, from its feed into the log, each exactly once.

``GET /v1/receipts?after=<seq>&limit=<n>`` (docs/node.md) lists receipts in ``seq`` order with
the id of the node's journal (``node_instance``). The collector keeps a cursor per node:

1. Read a page after the cursor. A different ``node_instance`` means a new journal (the node's
   storage was replaced): the cursor restarts at 0 for it.
2. For each new receipt: verify its signatures, check its signer against what the node's
   attestations said about it (``receipt.signer``, decided by
   ``attestation.receipt.decide_signer``), build the entry, and store the entry *bytes* in
   ``collector_receipt`` keyed by ``(node, node_instance, seq)`` before appending.
3. Append the batch, then record each log index and move the cursor, in one transaction.

A crash after (3)'s append but before its commit leaves rows without an index: the next run
re-appends the *stored* bytes, which the log answers with the existing index (duplicate
detection by entry hash), so nothing is logged twice. Nothing is skipped either: the cursor
moves only past receipts whose index is recorded. Receipts the node no longer has (retention)
show up as a gap in ``seq`` and are counted in ``missing``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select
from teelog.attestation.receipt import SignerDecision, SignerRecord, decide_signer, signer_key
from teelog.attestation.verdict import Check, status_of
from teelog.entries.receipt import encode_receipt, receipt_entry

from .appender import GroupAppender
from .clients import NodeError, NoReceiptsFeed, ReceiptPage, ReceiptsClient
from .config import NodeConfig
from .health import record_failure, record_success
from .models import (
    CollectorNode,
    CollectorReceipt,
    CollectorReceiptCursor,
    CollectorSigner,
    StateDB,
)
from .poll import Clock, CollectorFault, LogLike, utc

logger = logging.getLogger("teelog.collector.receipts")

# Verifies a feed item's signatures: returns checks as {"name","status","detail"} dicts.
SignatureChecks = Callable[[dict[str, Any]], list[dict[str, Any]]]

MAX_PAGES_PER_RUN = 20


@dataclass(frozen=True, slots=True)
class ReceiptsOutcome:
    """What one run of a node's receipts job did."""

    node: str
    appended: int = 0
    already: int = 0
    missing: int = 0
    error: NodeError | None = None
    skipped: bool = False
    no_feed: bool = False  # the node answered 404: it publishes no receipts


def known_signers(session: Session, node: str) -> dict[str, SignerRecord]:
    """What the node's attestations said about every signing key they named, by
    :func:`~teelog.attestation.receipt.signer_key`."""
    rows = session.exec(select(CollectorSigner).where(CollectorSigner.node == node))
    return {
        signer_key(r.signing_address): SignerRecord(
            named_status=r.named_status,
            named_index=r.named_index,
            vouched_status=r.status,
            vouched_index=r.log_index,
        )
        for r in rows
    }


def signer_check(
    signers: dict[str, SignerRecord],
    node: str,
    item: dict[str, Any],
    signature_checks: list[dict[str, Any]],
) -> SignerDecision:
    """``receipt.signer`` for one feed item: the signers whose ``receipt.signature.<algo>``
    check passed, judged by :func:`~teelog.attestation.receipt.decide_signer` (the one rule)."""
    verified_algos = {
        c["name"].removeprefix("receipt.signature.")
        for c in signature_checks
        if c["status"] == "pass" and c["name"].startswith("receipt.signature.")
    }
    verified = [
        (algo, item[algo]["signing_address"])
        for algo in ("ecdsa", "ed25519")
        if algo in verified_algos and isinstance(item.get(algo), dict)
    ]
    return decide_signer(signers, verified, owner=node)


class ReceiptsPoller:
    """Copies one node's receipts feed into the log: the scheduler's per-node receipts job."""

    def __init__(
        self,
        node: NodeConfig,
        client: ReceiptsClient,
        log: LogLike,
        verify_signatures: SignatureChecks,
        clock: Clock,
        appender: GroupAppender,
        db: StateDB,
    ) -> None:
        self.node = node
        self.client = client
        self.log = log
        self.verify_signatures = verify_signatures
        self.clock = clock
        self.appender = appender
        self.db = db

    def _cursor(self, session: Session) -> CollectorReceiptCursor:
        cursor = session.get(CollectorReceiptCursor, self.node.name)
        if cursor is None:
            cursor = CollectorReceiptCursor(node=self.node.name)
            session.add(cursor)
            session.flush()
        return cursor

    def poll(self, *, force: bool = False) -> ReceiptsOutcome:
        """Read and log everything new on the feed (up to a page budget). Never raises
        NodeError: failures are recorded as the feed's health and retried with backoff."""
        name = self.node.name
        with self.db.session() as session:
            cursor = self._cursor(session)
            due = cursor.next_attempt_at
            node_state = session.get(CollectorNode, name)
            polls = node_state.polls if node_state is not None else 0
            detected = node_state.format if node_state is not None else None
            session.commit()
        if not force and due is not None and utc(self.clock()) < due:
            return ReceiptsOutcome(node=name, skipped=True)
        if polls == 0:
            # Give the first attestation poll the chance to vouch for the signer first.
            return ReceiptsOutcome(node=name, skipped=True)
        if detected not in (None, "vllm-proxy"):
            return ReceiptsOutcome(node=name, skipped=True)  # gateways publish no receipts
        appended = already = missing = 0
        try:
            for _ in range(MAX_PAGES_PER_RUN):
                page = self._next_page()
                a, b, m = self._log_page(page)
                appended, already, missing = appended + a, already + b, missing + m
                if not page.has_more or not page.items:
                    break
        except NoReceiptsFeed as exc:
            self._failed(exc)
            return ReceiptsOutcome(node=name, appended=appended, no_feed=True)
        except NodeError as exc:
            self._failed(exc)
            return ReceiptsOutcome(
                node=name, appended=appended, already=already, missing=missing, error=exc
            )
        except Exception as exc:  # our side (log, database): recorded, retried with backoff
            logger.exception("node %s: logging receipts failed", name)
            fault = CollectorFault(f"logging receipts failed: {type(exc).__name__}: {exc}")
            self._failed(fault)
            return ReceiptsOutcome(
                node=name, appended=appended, already=already, missing=missing, error=fault
            )
        self._succeeded()
        return ReceiptsOutcome(node=name, appended=appended, already=already, missing=missing)

    def _next_page(self) -> ReceiptPage:
        with self.db.session() as session:
            cursor = self._cursor(session)
            instance, after = cursor.node_instance, cursor.last_seq
        page = self.client.fetch(after, self.node.receipts_batch)
        if page.node_instance != instance:
            if instance is not None:
                logger.warning(
                    "node %s: receipts journal changed (%s -> %s); reading it from the start",
                    self.node.name, instance, page.node_instance,
                )
            with self.db.session() as session:
                cursor = self._cursor(session)
                cursor.node_instance = page.node_instance
                cursor.last_seq = 0
                session.add(cursor)
                session.commit()
            if after != 0:
                expected = page.node_instance
                page = self.client.fetch(0, self.node.receipts_batch)
                if page.node_instance != expected:
                    raise NodeError("receipts: node_instance changed between two requests")
        return page

    def _log_page(self, page: ReceiptPage) -> tuple[int, int, int]:
        """Append the page's new receipts; return (appended, already logged, missing).

        Steps: read what is known (cursor, rows already stored for these receipts, signers);
        verify and build the new entries with no transaction open (CPU-bound); store their
        bytes; append them, recording indexes and cursor in the append's transaction.
        """
        name, instance = self.node.name, page.node_instance
        observed = self.clock()
        with self.db.session() as session:
            start = self._cursor(session).last_seq
            seqs = [item["seq"] for item in page.items if item["seq"] > start]
            stored = {
                row.seq: (row.id, row.entry, row.log_index)
                for row in session.exec(
                    select(CollectorReceipt).where(
                        CollectorReceipt.node == name,
                        CollectorReceipt.node_instance == instance,
                        CollectorReceipt.seq.in_(seqs),
                    )
                )
            } if seqs else {}
            signers = known_signers(session, name)
        last, missing, already = start, 0, 0
        fresh: list[tuple[int, bytes]] = []  # (seq, entry bytes) not stored yet
        reused: list[tuple[int, int, bytes]] = []  # (seq, row id, bytes) stored, not appended
        for item in page.items:
            seq = item["seq"]
            if seq <= last:
                continue  # a node answering with old items: already handled
            missing += seq - last - 1
            last = seq
            if seq not in stored:
                fresh.append((seq, self._entry(signers, instance, item, observed)))
            elif stored[seq][2] is not None:
                already += 1
            else:
                reused.append((seq, stored[seq][0], stored[seq][1]))
        pending = list(reused)
        if fresh:
            with self.db.session() as session:
                rows = [
                    CollectorReceipt(node=name, node_instance=instance, seq=seq, entry=entry)
                    for seq, entry in fresh
                ]
                session.add_all(rows)
                session.flush()
                pending += [(row.seq, row.id, row.entry) for row in rows if row.id is not None]
                session.commit()
        pending.sort()  # the log gets a node's receipts in seq order

        def bookkeeping(session: Session, indexes: list[int]) -> None:
            for (_, row_id, _), index in zip(pending, indexes, strict=True):
                row = session.get(CollectorReceipt, row_id)
                assert row is not None
                row.log_index = index
                session.add(row)
            cursor = self._cursor(session)
            if last > cursor.last_seq:
                cursor.last_seq = last
            cursor.receipts += len(pending)
            cursor.missing += missing
            session.add(cursor)

        if pending:
            self.appender.append_with([entry for _, _, entry in pending], bookkeeping)
        else:
            with self.db.session() as session:
                bookkeeping(session, [])
                session.commit()
        if missing:
            logger.warning("node %s: %d receipts were gone from the feed", name, missing)
        return len(pending), already, missing

    def _entry(
        self,
        signers: dict[str, SignerRecord],
        instance: str,
        item: dict[str, Any],
        observed: datetime,
    ) -> bytes:
        checks = self.verify_signatures(item)
        decision = signer_check(signers, self.node.name, item, checks)
        checks = [*checks, decision.check.to_json()]
        entry = receipt_entry(
            node=self.node.name,
            node_instance=instance,
            item=item,
            observed_at=observed,
            attestation_index=decision.attestation_index,
            named_index=decision.named_index,
            status=_status_of(checks),
            checks=checks,
        )
        return encode_receipt(entry)

    def _succeeded(self) -> None:
        with self.db.session() as session:
            cursor = self._cursor(session)
            record_success(cursor, utc(self.clock()))
            cursor.feed_available = True
            session.add(cursor)
            session.commit()

    def _failed(self, exc: NodeError) -> None:
        now = self.clock()
        level = logging.INFO if exc.kind == "no_feed" else logging.WARNING
        logger.log(level, "node %s receipts: %s: %s", self.node.name, exc.kind, exc.message)
        with self.db.session() as session:
            cursor = self._cursor(session)
            cursor.feed_available = exc.kind != "no_feed"
            # A node without a feed is asked again rarely: it may gain one on upgrade.
            rarely = self.node.max_backoff if exc.kind == "no_feed" else 0.0
            record_failure(
                cursor, exc, utc(now), self.node, self.node.receipts_interval, at_least=rarely
            )
            session.add(cursor)
            session.commit()


def _status_of(checks: list[dict[str, Any]]) -> str:
    """A receipt's overall status from its checks (the verdict rules, attestation/verdict.py)."""
    return status_of(Check.from_json(c) for c in checks)
