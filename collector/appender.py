"""Group commit: entries appended concurrently by many poll threads go to the log together.

A log append is durable and signed when it returns (``Log.append_many``: tiles, entry bundle
and checkpoint written and fsynced), so its cost is mostly per call, not per entry. While one
call is in flight, entries from other threads queue up; the next caller to find no call in
flight takes the whole queue as one batch (the "leader"), and every thread gets its own
indexes back. One thread alone sees no added latency; fifty see one append per batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _Slot:
    entries: list[bytes]
    indexes: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class GroupAppender:
    """Appends to ``log`` (``append_many(list[bytes]) -> list[int]``) in shared batches."""

    def __init__(self, log: Any, *, max_batch: int = 1024) -> None:
        self.log = log
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Slot] = []
        self._busy = False
        self.batches = 0  # how many log calls were made (for benchmarks and tests)

    def append(self, entry: bytes) -> int:
        """Append one entry; return its index once durable (as ``Log.append``)."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries in order, in a batch shared with concurrent callers."""
        if not entries:
            return []
        slot = _Slot(list(entries))
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
        return slot.indexes

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
            indexes = self.log.append_many([e for slot in batch for e in slot.entries])
        except BaseException as exc:  # every waiter of this batch gets the failure
            for slot in batch:
                slot.error, slot.done = exc, True
            return
        self.batches += 1
        at = 0
        for slot in batch:
            slot.indexes = list(indexes[at : at + len(slot.entries)])
            at += len(slot.entries)
            slot.done = True
