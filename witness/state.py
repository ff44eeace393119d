"""The witness's per-log record: the latest checkpoint it cosigned (c2sp.org/tlog-witness).

One file per log, ``<data>/state/<sha256(origin) hex>.checkpoint``, holding the cosigned note
(the log's checkpoint with this witness's cosignature appended).  :meth:`WitnessState.update`
checks the old state and persists the new one atomically under a per-log lock (a thread lock
and an ``flock`` on ``.lock`` beside it, so two processes on one data directory cannot race),
and the file is replaced by rename + fsync before the caller replies: after a crash or kill -9
the witness sees either the old or the new checkpoint, never rolls back one it answered.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from teelog.log.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from teelog.log.fsio import write_durable

T = TypeVar("T")


class StateError(RuntimeError):
    """A stored checkpoint is unreadable: refuse to cosign rather than forget the history."""


def origin_hash(origin: str) -> str:
    """``hex(SHA-256(origin))``, the per-log path component of the monitoring API."""
    return hashlib.sha256(origin.encode()).hexdigest()


class WitnessState:
    """The latest cosigned checkpoint of each log under ``<data>/state``."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "state"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _path(self, origin: str) -> Path:
        return self.dir / f"{origin_hash(origin)}.checkpoint"

    def latest(self, origin: str) -> Checkpoint | None:
        """The latest cosigned checkpoint of ``origin`` (with its note), or None."""
        path = self._path(origin)
        try:
            note = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"{path}: cannot read the stored checkpoint: {e}") from e
        try:
            cp = parse_checkpoint(note)
        except CheckpointError as e:
            raise StateError(f"{path}: stored checkpoint is damaged: {e}") from e
        if cp.origin != origin:
            raise StateError(f"{path}: stored checkpoint is for {cp.origin!r}, not {origin!r}")
        return cp

    @contextmanager
    def _locked(self, origin: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:
            fd = os.open(self.dir / f"{origin_hash(origin)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def update(self, origin: str, decide: Callable[[Checkpoint | None], tuple[str | None, T]]) -> T:
        """Atomically: read the latest checkpoint, let ``decide`` judge, persist its new note.

        ``decide(latest)`` returns ``(note to store or None, result)``; the note is durable on
        disk before this returns ``result``.
        """
        with self._locked(origin):
            note, result = decide(self.latest(origin))
            if note is not None:
                write_durable(self._path(origin), note.encode())
            return result
