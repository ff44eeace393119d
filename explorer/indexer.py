"""Builds the explorer's lookup index (``explorer.schema``) from the log itself.

The indexer reads entries the log has integrated since its cursor (``cursor <= i <
checkpoint.size``, from the published entry bundles), parses each defensively
(``entry_view.parse_entry``: unknown types and malformed JSON are indexed, never fatal) and
writes, in one transaction per batch:
the entry row, its lookup keys, the status of each of its parts (``explorer_roles``), the
node's summary, the measurements that changed since the node's previous attestation, and the
counters.

Replicas may share one database (PostgreSQL): a batch first advances the cursor with a
compare-and-swap (``UPDATE … WHERE value = old``), which serialises concurrent indexers on that
row; the loser rolls back and simply finds the work done. Only integrated entries under a signed
checkpoint are indexed, so everything the explorer shows is provable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from teelog.entries.attestation import attestations_of, measurements_of
from teelog.entries.changes import changes_between, summary_of
from teelog.log import TileError, TileReader
from teelog.log.tiles import TILE_WIDTH

from . import schema
from .entry_view import EntryView, parse_entry

log_ = logging.getLogger(__name__)

BATCH = 2000
# The layout of the derived tables; an index written by an older explorer is rebuilt from the
# log (``Indexer._rebuild_if_older``). 2: ``explorer_roles`` (the status of each part).
SCHEMA_VERSION = 2


class LogReader(Protocol):
    """The part of ``teelog.log.Log`` the indexer reads (docs/architecture.md)."""

    engine: Engine

    def checkpoint(self) -> Any: ...  # .size

    def entry(self, index: int) -> bytes: ...

    def published_file(self, path: str) -> Path: ...


@dataclass(slots=True)
class _NodeDelta:
    first_index: int
    last_index: int | None = None
    last_seen: str | None = None
    status: str | None = None
    tcb_status: str | None = None
    attestations: int = 0
    receipts: int = 0
    changes: int = 0


class Indexer:
    """Incremental, restartable indexer over one log; safe to call from many threads."""

    def __init__(self, log: LogReader, *, batch: int = BATCH) -> None:
        self.log = log
        self.engine: Engine = log.engine
        self.batch = batch
        self._lock = threading.Lock()
        self._last_run = 0.0
        schema.metadata.create_all(self.engine)
        # Tables made by an older version get the indexes added since (create_all skips them).
        for table in schema.metadata.sorted_tables:
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)
        self._rebuild_if_older()

    def _rebuild_if_older(self) -> None:
        """Empty the derived tables when an explorer older than ``SCHEMA_VERSION`` indexed
        them, so that the next catch-up re-indexes every entry from the log (nothing in them
        is authoritative). Done in one transaction with the version's row; a replica that
        starts at the same moment may do it again, which the cursor's compare-and-swap makes
        harmless (a batch written before the reset fails its swap and is redone)."""
        st = schema.state
        with self.engine.begin() as conn:
            version = conn.execute(select(st.c.value).where(st.c.name == "schema")).scalar()
            if version is not None and version >= SCHEMA_VERSION:
                return
            cursor = conn.execute(select(st.c.value).where(st.c.name == "cursor")).scalar()
            if cursor:
                log_.warning(
                    "explorer index of %d entries was written by an older explorer "
                    "(layout %s); rebuilding it from the log", cursor, version or 1,
                )
                for table in reversed(schema.metadata.sorted_tables):
                    if table is not st:
                        conn.execute(delete(table))
                conn.execute(update(st).where(st.c.name == "cursor").values(value=0))
            if version is None:
                conn.execute(insert(st).values(name="schema", value=SCHEMA_VERSION))
            else:
                conn.execute(update(st).where(st.c.name == "schema").values(value=SCHEMA_VERSION))

    def cursor(self) -> int:
        """How many entries are indexed (the next index to read)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(schema.state.c.value).where(schema.state.c.name == "cursor")
            ).scalar()
        return int(value or 0)

    def catch_up(self, size: int | None = None) -> int:
        """Index every entry below ``size`` (default: the latest checkpoint's); return how many.

        Blocks while another thread of this process indexes, then finds its work done.
        """
        with self._lock:
            target = self.log.checkpoint().size if size is None else size
            done = 0
            while True:
                n = self._index_batch(target)
                if n == 0:
                    return done
                done += n

    def catch_up_if_due(self, interval: float, max_batches: int = 1) -> None:
        """Cheap per-request hook: index at most ``max_batches`` batches, at most once per
        ``interval`` seconds, so that no request waits long for a large backlog (``teelog
        serve`` catches up before listening and keeps up in a background thread).

        Never waits for another thread's run (a request is not delayed by indexing it did not
        need), and never raises: a failure is logged and retried on a later request.
        """
        now = time.monotonic()
        if now - self._last_run < interval:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._last_run = now
            target = self.log.checkpoint().size
            for _ in range(max_batches):
                if not self._index_batch(target):
                    break
        except Exception:  # the index lags; pages still serve what is indexed
            log_.exception("explorer index catch-up failed")
        finally:
            self._lock.release()

    def _index_batch(self, target: int) -> int:
        start = self.cursor()
        if start >= target:
            return 0
        stop = min(target, start + self.batch)
        views = [parse_entry(i, raw) for i, raw in self._entries(start, stop, target)]
        try:
            with self.engine.begin() as conn:
                if not self._advance_cursor(conn, start, stop):
                    return stop - start  # another indexer did this batch; re-read the cursor
                self._write(conn, views)
        except (IntegrityError, OperationalError):
            # Either a concurrent indexer on the same database won the race for these rows
            # (then the cursor moved on), or something is wrong that retrying will not fix.
            if self.cursor() <= start:
                raise
            log_.info("explorer index batch %d..%d was indexed concurrently", start, stop)
        return stop - start

    def _entries(self, start: int, stop: int, size: int) -> Iterator[tuple[int, bytes]]:
        """Entries ``start..stop-1`` of the tree of ``size``, read bundle by bundle.

        Reads the published C2SP entry bundles (``tile/entries/N[.p/W]``, 256 entries each)
        as any mirror would, instead of one ``log.entry`` call (one bundle decode and one
        checkpoint read) per entry.
        """

        def fetch(path: str) -> bytes:
            try:
                return self.log.published_file(path).read_bytes()
            except TileError as exc:  # TileReader falls back from a partial to the full bundle
                raise FileNotFoundError(str(exc)) from exc

        reader = TileReader(fetch, size, cache_tiles=2)
        for n in range(start // TILE_WIDTH, (stop - 1) // TILE_WIDTH + 1):
            base = n * TILE_WIDTH
            for off, raw in enumerate(reader.bundle(n)):
                if start <= base + off < stop:
                    yield base + off, raw

    def _advance_cursor(self, conn: Connection, start: int, stop: int) -> bool:
        if start == 0:
            exists = conn.execute(
                select(schema.state.c.value).where(schema.state.c.name == "cursor")
            ).scalar()
            if exists is None:
                conn.execute(insert(schema.state).values(name="cursor", value=stop))
                return True
        result = conn.execute(
            update(schema.state)
            .where(schema.state.c.name == "cursor", schema.state.c.value == start)
            .values(value=stop)
        )
        return result.rowcount == 1

    def _write(self, conn: Connection, views: list[EntryView]) -> None:
        entry_rows = []
        key_rows = []
        role_rows: list[dict[str, Any]] = []
        count_delta: dict[tuple[str, str], int] = {}
        node_delta: dict[str, _NodeDelta] = {}
        change_rows: list[dict[str, Any]] = []
        last: dict[str, tuple[int, dict[str, Any]]] = {}
        for v in views:
            entry_rows.append(
                {
                    "idx": v.index,
                    "type": v.kind,
                    "node": (v.node or None) and v.node[:200],
                    "time": (v.time or None) and v.time[:40],
                    "status": v.status,
                    "summary": v.summary[:400],
                    "problems": "\n".join(v.problems)[:4000] or None,
                }
            )
            key_rows.extend({"value": val, "kind": k, "idx": v.index} for k, val in v.keys)
            role_rows.extend(
                {"idx": v.index, "pos": pos, "role": r.role, "model": r.model,
                 "status": r.status, "reason": r.reason, "signing_address": r.signing_address}
                for pos, r in enumerate(v.roles)
            )
            ck = (v.kind, v.status or "")
            count_delta[ck] = count_delta.get(ck, 0) + 1
            if v.node:
                name = v.node[:200]
                delta = node_delta.setdefault(name, _NodeDelta(first_index=v.index))
                if v.kind == "receipt":
                    delta.receipts += 1
                elif v.kind == "attestation" and v.doc is not None:
                    delta.attestations += 1
                    delta.last_index = v.index
                    delta.last_seen = v.time
                    delta.status = v.status
                    delta.tcb_status = _tcb_status(v.doc)
                    n = self._detect_changes(conn, name, v, last, change_rows)
                    delta.changes += n
        if entry_rows:
            conn.execute(insert(schema.entries), entry_rows)
        if key_rows:
            conn.execute(insert(schema.keys), key_rows)
        if role_rows:
            conn.execute(insert(schema.roles), role_rows)
        if change_rows:
            conn.execute(insert(schema.changes), change_rows)
        self._store_last_summaries(conn, last)
        self._apply_counts(conn, count_delta)
        self._apply_nodes(conn, node_delta)

    def _detect_changes(
        self,
        conn: Connection,
        node: str,
        view: EntryView,
        last: dict[str, tuple[int, dict[str, Any]]],
        change_rows: list[dict[str, Any]],
    ) -> int:
        assert view.doc is not None
        new = summary_of(view.doc)
        prev = last.get(node)
        if prev is None:
            t = schema.last_summary
            row = conn.execute(select(t.c.idx, t.c.summary).where(t.c.node == node)).first()
            if row is not None:
                prev = (int(row.idx), json.loads(row.summary))
        found = 0
        if prev is not None:
            for field, old_v, new_v in changes_between(prev[1], new):
                change_rows.append(
                    {
                        "node": node,
                        "idx": view.index,
                        "prev_idx": prev[0],
                        "time": view.time,
                        "field": field[:400],
                        "old": old_v,
                        "new": new_v,
                    }
                )
                found += 1
        last[node] = (view.index, new)
        return found

    def _store_last_summaries(
        self, conn: Connection, last: dict[str, tuple[int, dict[str, Any]]]
    ) -> None:
        t = schema.last_summary
        for node, (idx, value) in last.items():
            values = {"idx": idx, "summary": json.dumps(value, sort_keys=True)}
            result = conn.execute(update(t).where(t.c.node == node).values(**values))
            if result.rowcount == 0:
                conn.execute(insert(t).values(node=node, **values))

    def _apply_counts(self, conn: Connection, delta: dict[tuple[str, str], int]) -> None:
        t = schema.counts
        for (etype, status), n in delta.items():
            result = conn.execute(
                update(t).where(t.c.type == etype, t.c.status == status).values(n=t.c.n + n)
            )
            if result.rowcount == 0:
                conn.execute(insert(t).values(type=etype, status=status, n=n))

    def _apply_nodes(self, conn: Connection, delta: dict[str, _NodeDelta]) -> None:
        t = schema.nodes
        for name, d in delta.items():
            latest: dict[str, Any] = {}
            if d.last_index is not None:
                latest = {
                    "last_index": d.last_index,
                    "last_seen": d.last_seen,
                    "status": d.status,
                    "tcb_status": d.tcb_status,
                }
            result = conn.execute(
                update(t)
                .where(t.c.name == name)
                .values(
                    attestations=t.c.attestations + d.attestations,
                    receipts=t.c.receipts + d.receipts,
                    changes=t.c.changes + d.changes,
                    **latest,
                )
            )
            if result.rowcount == 0:
                conn.execute(
                    insert(t).values(
                        name=name,
                        first_index=d.first_index,
                        attestations=d.attestations,
                        receipts=d.receipts,
                        changes=d.changes,
                        **latest,
                    )
                )


def _tcb_status(doc: dict[str, Any]) -> str | None:
    """The worst TCB status among the entry's attestations (any non-UpToDate one wins)."""
    found: str | None = None
    for att in attestations_of(doc):
        tcb = measurements_of(att).get("tcb_status")
        if isinstance(tcb, str) and (found is None or (found == "UpToDate" and tcb != "UpToDate")):
            found = tcb[:40]
    return found


def start_background(indexer: Indexer, interval: float, stop: threading.Event) -> threading.Thread:
    """Run ``indexer.catch_up`` every ``interval`` seconds in a daemon thread until ``stop``."""

    def run() -> None:
        while not stop.wait(interval):
            try:
                indexer.catch_up()
            except Exception:
                log_.exception("explorer background indexing failed")

    thread = threading.Thread(target=run, name="teelog-explorer-indexer", daemon=True)
    thread.start()
    return thread
