"""Group commit of the broker's decisions: concurrent ``key_release`` entries share one append.

Contract: :meth:`GroupCommit.append` returns ``(index, checkpoint_size)`` only once the entry
is durable and covered by a signed checkpoint of that size — the guarantee of
:meth:`teelog.log.Log.append_many`, which does the work — so log-before-release (issue 11)
holds for every caller. If the append of a batch raises, every caller in that batch gets the
exception and nothing of that batch may be released.

Batching (leader/follower, no thread of its own): a caller queues its entry; if no append is
in flight it becomes the *leader*, takes everything queued (up to ``max_batch``) and appends
it with one ``append_many`` — one integration, one fsync, one checkpoint signature (RFC 9162
§4.1 signed tree head) for the whole batch. Entries queued meanwhile wait for that append to
finish, and one of their callers leads the next batch. So under load a batch is whatever
arrived during the previous append, and a lone request pays no extra delay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class _Slot:
    entry: bytes
    index: int | None = None
    size: int | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.index is not None or self.error is not None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One append this batcher made: how many entries, and the checkpoint size after it."""

    entries: int
    checkpoint_size: int | None


class GroupCommit:
    """Batches ``append`` calls from many threads into ``append_many`` calls.

    ``append_many(entries)`` must return the entries' indexes once they are in a signed
    checkpoint; ``checkpoint_size()`` the size of the latest signed checkpoint (read after
    the append, so it covers the batch)."""

    def __init__(
        self,
        append_many: Callable[[Sequence[bytes]], list[int]],
        checkpoint_size: Callable[[], int],
        *,
        max_batch: int = 256,
        keep_history: int = 0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._append_many = append_many
        self._checkpoint_size = checkpoint_size
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Slot] = []
        self._leading = False
        self._keep = keep_history
        self.history: list[BatchRecord] = []  # the last ``keep_history`` batches (tests, metrics)

    def append(self, entry: bytes) -> tuple[int, int]:
        """Append ``entry`` with whatever else is pending; return (index, checkpoint size)."""
        slot = _Slot(entry)
        leader = False
        with self._cond:
            self._queue.append(slot)
            while not slot.done and self._leading:
                self._cond.wait()
            if not slot.done:
                self._leading = leader = True
        try:
            while not slot.done:  # leader: batches in arrival order until ours is appended
                with self._cond:
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                self._commit(batch)
        finally:
            if leader:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.index is not None and slot.size is not None
        return slot.index, slot.size

    def _commit(self, batch: list[_Slot]) -> None:
        size: int | None = None
        try:
            indexes = self._append_many([s.entry for s in batch])
            size = self._checkpoint_size()
            if len(indexes) != len(batch):
                raise RuntimeError(f"the log returned {len(indexes)} indexes for "
                                   f"{len(batch)} entries")
        except BaseException as exc:  # the whole batch fails closed, whatever went wrong
            for s in batch:
                s.error = exc
        else:
            for s, index in zip(batch, indexes, strict=True):
                s.index, s.size = index, size
        with self._cond:
            if self._keep:
                self.history.append(BatchRecord(len(batch), size))
                del self.history[: -self._keep]
            self._cond.notify_all()  # this batch's callers may answer now
