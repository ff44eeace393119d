"""The node's receipt journal: a local SQLite file that outlives restarts.

Invariants:
- ``seq`` strictly increases and is never reused, not even after retention deletes the newest
  rows (SQLite ``AUTOINCREMENT`` keeps the high-water mark in ``sqlite_sequence``).
- ``instance_id`` (a UUID) is created with the file and never changes; the collector keys its
  cursor on it, so a wiped journal is told apart from a restarted node.
- A receipt is committed before :meth:`Journal.append` returns; the node makes a receipt
  visible (``/v1/signature``, the feed) and delivers the response's final bytes only after that.

Durability: WAL with ``synchronous=NORMAL`` survives a crash of the process (what "restart"
means here) without an fsync per response; a power cut may lose the last commits (SQLite
"WAL mode" documentation). ``durable=True`` selects ``synchronous=FULL``. SQLite's automatic
checkpoint (every 1000 WAL pages, run by the committing writer) keeps the WAL bounded under
sustained load; a checkpoint running beside the writer could not, because the WAL restarts
only once a checkpoint has caught up with the last commit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from teelog.attestation.times import parse_rfc3339

from .receipt import Receipt, Signature

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL,
    model TEXT,
    request_sha256 TEXT NOT NULL,
    response_sha256 TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    signed_at_unix INTEGER NOT NULL,
    ecdsa_address TEXT NOT NULL,
    ecdsa_signature TEXT NOT NULL,
    ed25519_address TEXT NOT NULL,
    ed25519_signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_chat_id ON receipts (chat_id);
CREATE INDEX IF NOT EXISTS receipts_signed_at ON receipts (signed_at_unix);
"""

_COLUMNS = (
    "seq, chat_id, model, request_sha256, response_sha256, signed_at, "
    "ecdsa_address, ecdsa_signature, ed25519_address, ed25519_signature"
)

# Retention deletes run at most this often (seconds); they are cheap but need not run per row.
_PRUNE_INTERVAL = 600.0


def _unix(signed_at: str) -> int:
    return int(parse_rfc3339(signed_at).timestamp())


def _row_to_receipt(row: tuple) -> Receipt:
    return Receipt(
        seq=row[0],
        chat_id=row[1],
        model=row[2],
        request_sha256=row[3],
        response_sha256=row[4],
        signed_at=row[5],
        ecdsa=Signature(row[6], row[7]),
        ed25519=Signature(row[8], row[9]),
    )


class Journal:
    """Append-only (up to retention) store of receipts. Thread-safe; one writer process.

    ``retention_days=None`` keeps receipts forever.
    """

    def __init__(
        self, path: str | Path, *, retention_days: float | None = None, durable: bool = False
    ) -> None:
        if retention_days is not None and retention_days <= 0:
            raise ValueError(f"retention must be a positive number of days, got {retention_days}")
        self.path = Path(path)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._db:
            self._db.executescript(_SCHEMA)
        self.instance_id = self._instance_id()
        self._next_prune = 0.0
        self.prune()

    def _instance_id(self) -> str:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key='instance_id'").fetchone()
                if row is None:
                    value = str(uuid.uuid4())
                    self._db.execute("INSERT INTO meta VALUES ('instance_id', ?)", (value,))
                else:
                    value = row[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return value

    def append(self, receipt: Receipt) -> Receipt:
        """Commit ``receipt`` (its ``seq`` is ignored); return it with the assigned ``seq``."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO receipts (chat_id, model, request_sha256, response_sha256, "
                "signed_at, signed_at_unix, ecdsa_address, ecdsa_signature, ed25519_address, "
                "ed25519_signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.chat_id,
                    receipt.model,
                    receipt.request_sha256,
                    receipt.response_sha256,
                    receipt.signed_at,
                    _unix(receipt.signed_at),
                    receipt.ecdsa.signing_address,
                    receipt.ecdsa.signature,
                    receipt.ed25519.signing_address,
                    receipt.ed25519.signature,
                ),
            )
            seq = cur.lastrowid
        if self.retention_days is not None and time.monotonic() >= self._next_prune:
            self.prune()
        return replace(receipt, seq=seq)

    def by_chat_id(self, chat_id: str) -> Receipt | None:
        """The newest receipt for ``chat_id`` still retained, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM receipts WHERE chat_id = ? ORDER BY seq DESC LIMIT 1",
                (chat_id,),
            ).fetchone()
        return None if row is None else _row_to_receipt(row)

    def page(self, after: int, limit: int) -> tuple[list[Receipt], bool]:
        """Receipts with ``seq > after`` in order, at most ``limit``; and whether more follow."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit + 1),
            ).fetchall()
        return [_row_to_receipt(r) for r in rows[:limit]], len(rows) > limit

    def prune(self, now: float | None = None) -> int:
        """Delete receipts older than the retention period; return how many were deleted."""
        self._next_prune = time.monotonic() + _PRUNE_INTERVAL
        if self.retention_days is None:
            return 0
        cutoff = (time.time() if now is None else now) - self.retention_days * 86400
        with self._lock:
            cur = self._db.execute("DELETE FROM receipts WHERE signed_at_unix < ?", (cutoff,))
        return cur.rowcount

    def close(self) -> None:
        """Fold the WAL into the database file and close."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
