"""The log's database state (SQLModel): pending entries, the duplicate index, the sequencer lock,
and the compare-and-swap record of the last signed checkpoint.

Trust split, as in Sunlight: the database row ``log_cas`` is the *trusted* record of the latest
signed (size, root); it only ever moves forward by compare-and-swap, so the log can never sign
two inconsistent checkpoints.  Tiles and bundles on disk are data, checked against it on start.

SQLite (the default, ``DATA/teelog.db``) runs in WAL mode with ``synchronous=FULL`` and
``BEGIN IMMEDIATE`` transactions, so a commit is durable when it returns and concurrent writers
queue on the busy timeout instead of failing.  PostgreSQL is used when a URL names it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlmodel import Field, SQLModel

LOCK_NAME = "sequencer"
_IN_CHUNK = 500  # bound the parameters of one IN (...) query


class PendingEntry(SQLModel, table=True):
    """An entry submitted but not yet integrated; ``id`` is its pending sequence number."""

    __tablename__ = "log_pending"
    # Ids are never reused (SQLite would otherwise reuse the largest deleted rowid): a waiting
    # submitter must never collect another entry's result.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    submitted_at: float = Field(default_factory=time.time)


class IntegratedEntry(SQLModel, table=True):
    """The index given to a submitted entry, until its submitter collects it."""

    __tablename__ = "log_integrated"

    pending_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    idx: int = Field(sa_column=Column(BigInteger, nullable=False))
    integrated_at: float = Field(default_factory=time.time)


class SequencerLock(SQLModel, table=True):
    """The single sequencer lease: who holds it and until when (Unix seconds)."""

    __tablename__ = "log_sequencer_lock"

    name: str = Field(primary_key=True)
    holder: str | None = None
    expires_at: float = 0.0


class CasRecord(SQLModel, table=True):
    """The compare-and-swap record of the last signed checkpoint (one row per database)."""

    __tablename__ = "log_cas"

    origin: str = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))


class CheckpointHistory(SQLModel, table=True):
    """Every checkpoint the log signed, by size (for proofs against earlier checkpoints)."""

    __tablename__ = "log_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: float = Field(default_factory=time.time)


TABLES = [
    PendingEntry.__table__,
    IntegratedEntry.__table__,
    SequencerLock.__table__,
    CasRecord.__table__,
    CheckpointHistory.__table__,
]
_PENDING, _DONE, _LOCK, _CAS, _HISTORY = TABLES
RESULT_TTL = 24 * 3600.0  # uncollected results (submitter gone) are dropped after a day


class CasConflict(RuntimeError):
    """The CAS record moved under us: another sequencer signed. Nothing was committed."""


class LockLost(RuntimeError):
    """This process no longer holds the sequencer lease. Nothing was committed."""


@dataclass(frozen=True)
class SignedHead:
    """The content of the CAS record."""

    origin: str
    size: int
    root: bytes
    note: str


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, ``synchronous=FULL`` and immediate transactions."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def holder_identity() -> str:
    """``host:pid:start-time:nonce``; the start time guards against PID reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}:{os.urandom(4).hex()}"


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat.rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "?"


def holder_is_dead(holder: str) -> bool:
    """True if ``holder`` was a process on this host that no longer runs."""
    try:
        host, pid_s, start, _nonce = holder.split(":")
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname() or start == "?":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return _start_time(pid) != start


class LogStore:
    """Typed operations on the log's tables; each method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    def create_tables(self) -> None:
        SQLModel.metadata.create_all(self.engine, tables=TABLES)

    # --- CAS record -----------------------------------------------------------------------------

    def init_cas(self, head: SignedHead) -> None:
        """Create the CAS record for a new log; fail if the database already holds a log."""
        with self.engine.begin() as conn:
            existing = conn.execute(select(_CAS.c.origin)).first()
            if existing is not None:
                raise CasConflict(f"the database already holds the log {existing[0]!r}")
            conn.execute(insert(_CAS).values(**head.__dict__))
            conn.execute(insert(_HISTORY).values(size=head.size, root=head.root, note=head.note))
            conn.execute(insert(_LOCK).values(name=LOCK_NAME, holder=None, expires_at=0.0))

    def read_cas(self) -> SignedHead | None:
        with self.engine.begin() as conn:
            rows = conn.execute(select(_CAS)).all()
        if not rows:
            return None
        if len(rows) > 1:
            raise CasConflict("the database holds more than one CAS record")
        r = rows[0]
        return SignedHead(r.origin, r.size, bytes(r.root), r.note)

    def checkpoint_note(self, size: int) -> str | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(_HISTORY.c.note).where(_HISTORY.c.size == size)).first()
        return None if row is None else row[0]

    def has_checkpoint_between(self, lo: int, hi: int) -> bool:
        """Whether the log signed a checkpoint with ``lo <= size < hi``."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(_HISTORY.c.size).where(_HISTORY.c.size >= lo, _HISTORY.c.size < hi).limit(1)
            ).first()
        return row is not None

    def commit_batch(
        self,
        old: SignedHead,
        new: SignedHead,
        integrated: Sequence[tuple[int, int]],
        holder: str,
        lease_until: float,
    ) -> None:
        """Atomically swap the CAS record ``old`` -> ``new``, replace the integrated pending rows
        by their results ``(pending_id, index)`` and renew our lease.

        Raises :class:`CasConflict` or :class:`LockLost` (committing nothing) if the record moved
        or the lease is no longer ours.
        """
        with self.engine.begin() as conn:
            held = conn.execute(
                update(_LOCK)
                .where(_LOCK.c.name == LOCK_NAME, _LOCK.c.holder == holder)
                .values(expires_at=lease_until)
            ).rowcount
            if held != 1:
                raise LockLost("the sequencer lease was taken over; refusing to commit")
            if new.size != old.size or new.root != old.root:
                swapped = conn.execute(
                    update(_CAS)
                    .where(
                        _CAS.c.origin == old.origin,
                        _CAS.c.size == old.size,
                        _CAS.c.root == old.root,
                    )
                    .values(size=new.size, root=new.root, note=new.note)
                ).rowcount
                if swapped != 1:
                    raise CasConflict(
                        f"the signed checkpoint is no longer size {old.size}; another sequencer "
                        "has signed"
                    )
                conn.execute(insert(_HISTORY).values(size=new.size, root=new.root, note=new.note))
            if integrated:
                ph = "%s" if self._postgres else "?"
                now = time.time()
                conn.exec_driver_sql(
                    f"INSERT INTO {_DONE.name} (pending_id, idx, integrated_at) "
                    f"VALUES ({ph}, {ph}, {ph})",
                    [(pid, idx, now) for pid, idx in integrated],
                )
                for chunk in _chunks([pid for pid, _ in integrated]):
                    conn.execute(delete(_PENDING).where(_PENDING.c.id.in_(chunk)))
                conn.execute(delete(_DONE).where(_DONE.c.integrated_at < now - RESULT_TTL))

    # --- entries --------------------------------------------------------------------------------

    def submit(self, items: Sequence[tuple[bytes, bytes]]) -> list[int]:
        """Queue ``(leaf_hash, data)`` pairs; return their pending sequence numbers."""
        if not items:
            return []
        now = time.time()
        rows = [{"leaf_hash": h, "data": d, "submitted_at": now} for h, d in items]
        stmt = insert(_PENDING).returning(_PENDING.c.id, sort_by_parameter_order=True)
        with self.engine.begin() as conn:
            return [int(r[0]) for r in conn.execute(stmt, rows)]

    def pending_count(self) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(_PENDING)).scalar_one())

    def read_batch(self, limit: int) -> list[tuple[int, bytes, bytes]]:
        """The oldest ``limit`` pending entries: ``(id, leaf_hash, data)`` (driver-level SQL:
        this is the sequencer's hot path)."""
        if limit <= 0:
            return []
        ph = "%s" if self._postgres else "?"
        with self.engine.begin() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT id, leaf_hash, data FROM {_PENDING.name} ORDER BY id LIMIT {ph}",
                (limit,),
            )
            return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

    def take_result(self, pending_id: int) -> tuple[bool, int | None]:
        """``(still_pending, index)`` for a submitted entry; a found result is collected.

        The pending row is read before the result: a batch commit deletes the one and inserts
        the other atomically, but under PostgreSQL's READ COMMITTED each statement sees the
        latest commits, so reading the result first could miss it and then miss the pending row
        of the same commit. Read in this order, a missing pending row means the result is
        visible (or the id is unknown)."""
        with self.engine.begin() as conn:
            waiting = conn.execute(select(_PENDING.c.id).where(_PENDING.c.id == pending_id)).first()
            if waiting is not None:
                return True, None
            row = conn.execute(select(_DONE.c.idx).where(_DONE.c.pending_id == pending_id)).first()
            if row is None:
                return False, None
            conn.execute(delete(_DONE).where(_DONE.c.pending_id == pending_id))
            return False, int(row[0])

    # --- the sequencer lease --------------------------------------------------------------------

    def try_acquire(self, holder: str, ttl: float) -> bool:
        """Take the lease if it is free, expired, ours, or held by a dead local process."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(_LOCK.c.holder, _LOCK.c.expires_at).where(_LOCK.c.name == LOCK_NAME)
            ).first()
            if row is None:
                return False
            current, expires = row
            free = current is None or current == holder or expires < now
            if not free and not holder_is_dead(current):
                return False
            taken = conn.execute(
                update(_LOCK)
                .where(
                    _LOCK.c.name == LOCK_NAME,
                    _LOCK.c.holder.is_(None) if current is None else _LOCK.c.holder == current,
                )
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
            return taken == 1

    def renew(self, holder: str, ttl: float) -> bool:
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(_LOCK)
                    .where(_LOCK.c.name == LOCK_NAME, _LOCK.c.holder == holder)
                    .values(expires_at=time.time() + ttl)
                ).rowcount
                == 1
            )

    def release(self, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(_LOCK)
                .where(_LOCK.c.name == LOCK_NAME, _LOCK.c.holder == holder)
                .values(holder=None, expires_at=0.0)
            )

    def lock_holder(self) -> tuple[str | None, float]:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(_LOCK.c.holder, _LOCK.c.expires_at).where(_LOCK.c.name == LOCK_NAME)
            ).first()
        return (None, 0.0) if row is None else (row[0], row[1])


def _chunks(items: list, size: int = _IN_CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
