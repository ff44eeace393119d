"""Group commit: entries appended concurrently by many poll threads go to the log together,
and the bookkeeping that follows each append shares one database transaction.

A log append is durable and signed when it returns (``Log.append_many``: tiles, entry bundle
and checkpoint written and fsynced), so its cost is mostly per call, not per entry; the same
holds for a database commit. While one batch is in flight, entries from other threads queue
up; the next caller to find no batch in flight takes the whole queue (it becomes the
"leader"), appends it with one call, then runs every caller's ``after(session, indexes)`` in
one transaction (each in its own savepoint, so one failing does not undo the others), and
hands each thread its own result. One thread alone sees no added latency; fifty see one
append and one commit per batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from .models import StateDB

# Runs after the append, inside the batch's transaction: (session, this caller's indexes).
After = Callable[[Session, list[int]], Any]


@dataclass(slots=True)
class _Slot:
    entries: list[bytes]
    after: After | None = None
    indexes: list[int] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None
    done: bool = False


class GroupAppender:
    """Appends to ``log`` (``append_many(list[bytes]) -> list[int]``) in shared batches; the
    log call and the bookkeeping transaction run under ``db.lock``."""

    def __init__(self, log: Any, db: StateDB, *, max_batch: int = 1024) -> None:
        self.log = log
        self.db = db
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Slot] = []
        self._busy = False
        self.batches = 0  # how many log calls were made (for benchmarks and tests)

    def append(self, entry: bytes) -> int:
        """Append one entry; return its index once durable (as ``Log.append``)."""
        return self.append_with([entry])[0][0]

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries in order, in a batch shared with concurrent callers."""
        return self.append_with(entries)[0] if entries else []

    def append_with(
        self, entries: Sequence[bytes], after: After | None = None
    ) -> tuple[list[int], Any]:
        """Append ``entries``, then run ``after(session, indexes)`` in the batch's transaction;
        return the indexes and what ``after`` returned. Raises what either raised."""
        slot = _Slot(list(entries), after)
        with self._cv:
            self._queue.append(slot)
            while not slot.done:
                if self._busy:
                    self._cv.wait()
                    continue
                batch = self._take()
                self._busy = True
                self._cv.release()
                try:
                    self._run(batch)
                finally:
                    self._cv.acquire()
                    self._busy = False
                    self._cv.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.indexes, slot.result

    def _take(self) -> list[_Slot]:
        batch: list[_Slot] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].entries) <= self.max_batch):
            slot = self._queue.pop(0)
            batch.append(slot)
            size += len(slot.entries)
        return batch

    def _run(self, batch: list[_Slot]) -> None:
        try:
            with self.db.lock:
                indexes = self.log.append_many([e for slot in batch for e in slot.entries])
                self.batches += 1
                at = 0
                for slot in batch:
                    slot.indexes = list(indexes[at : at + len(slot.entries)])
                    at += len(slot.entries)
                if any(slot.after is not None for slot in batch):
                    self._bookkeeping(batch)
        except BaseException as exc:  # every waiter of this batch gets the failure
            for slot in batch:
                if slot.error is None:
                    slot.error = exc
        finally:
            for slot in batch:
                slot.done = True

    def _bookkeeping(self, batch: list[_Slot]) -> None:
        with self.db.session() as session:
            for slot in batch:
                if slot.after is None:
                    continue
                try:
                    with session.begin_nested():
                        slot.result = slot.after(session, slot.indexes)
                except Exception as exc:  # this caller's bookkeeping only
                    slot.error = exc
            session.commit()
