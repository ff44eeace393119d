"""The log: one data directory, one database, one signing key; append, prove, publish.

Layout of ``DIR`` (see docs/log.md)::

    log.json     origin and sequencing settings
    log.skey     the Ed25519 signing key (signed-note skey), mode 0600
    teelog.db    SQLite database, unless TEELOG_DATABASE_URL names another
    tiles/       c2sp.org/tlog-tiles: checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]
    blobs/       content-addressed evidence (SHA-256)

Guarantees: an index is returned only once the entry is in a durable, signed checkpoint; the
database's compare-and-swap record means no two inconsistent checkpoints are ever signed; one
process sequences at a time (a lease in the database), and any appending process sequences
itself when no one else does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from .blobs import BlobStore
from .checkpoint import Checkpoint, parse_checkpoint
from .dedup import DuplicateIndex
from .fsio import write_durable
from .location import DATABASE_ENV, DATABASE_ENV_OLD
from .merkle import EMPTY_ROOT, ProofError, leaf_hash
from .merkle import root as merkle_root
from .note import Ed25519Signer, NoteError
from .objects import S3Settings, is_s3_url
from .policy import POLICY_FILE, PolicyError, read_policy
from .proof_bundle import format_tlog_proof
from .sequencer import (
    BatchStats,
    LogStateError,
    Sequencer,
    publish_checkpoint,
    read_published_checkpoint,
    reconcile_published_checkpoint,
)
from .storage import LogStore, SignedHead, holder_identity, make_engine
from .tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileCache,
    TileError,
    TileReader,
    check_entry,
    parse_tile_path,
)
from .witnessing import Cosigned, Witnessing

DATABASE_URL_ENV = DATABASE_ENV_OLD


class LogError(RuntimeError):
    """The log cannot be created or opened as asked."""


@dataclass(frozen=True)
class LogConfig:
    """``log.json``: the origin and how the sequencer batches."""

    origin: str
    max_batch: int = 4096
    period: float = 1.0
    lease_ttl: float = 30.0

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"


def resolve_database_url(data_dir: Path, url: str | None = None) -> str:
    """``url``, else ``$TEELOG_DATABASE`` (or its older name ``$TEELOG_DATABASE_URL``), else
    SQLite at ``DIR/teelog.db`` (see :mod:`teelog.log.location`)."""
    return (
        url
        or os.environ.get(DATABASE_ENV)
        or os.environ.get(DATABASE_URL_ENV)
        or f"sqlite:///{Path(data_dir) / 'teelog.db'}"
    )


class Log:
    """An append-only transparency log (RFC 9162 tree, C2SP checkpoints and tiles)."""

    def __init__(
        self,
        data_dir: Path,
        config: LogConfig,
        signer: Ed25519Signer,
        engine: Engine,
        objects_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.objects_dir = Path(objects_dir) if objects_dir is not None else self.data_dir
        self.config = config
        self.signer = signer
        self.engine = engine
        self.store = LogStore(engine)
        self.tiles_dir = self.objects_dir / "tiles"
        self.blobs = BlobStore(self.objects_dir / "blobs")
        self.holder = holder_identity()
        self._mutex = threading.RLock()
        self._sequencer: Sequencer | None = None
        self._holding = 0  # nesting depth of sequencing() / the background loop
        self._tiles_cache = TileCache(256)  # shared by the readers of all threads
        self.witnessing: Witnessing | None = None
        policy_path = self.data_dir / POLICY_FILE
        if policy_path.exists():  # c2sp.org/tlog-witness: ask the policy's witnesses
            try:
                policy = read_policy(policy_path)
            except PolicyError as e:
                raise LogError(str(e)) from e
            self.witnessing = Witnessing(policy, self.consistency_proof, self._publish_cosigned)
        self._dedup = DuplicateIndex(self.tiles_dir)

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        data_dir: Path | str,
        origin: str,
        *,
        database_url: str | None = None,
        objects_url: str | Path | None = None,
        s3: S3Settings | None = None,
        max_batch: int = 4096,
        period: float = 1.0,
    ) -> Log:
        """Create a new log and its Ed25519 key in ``data_dir``; fail if one exists there.

        ``objects_url`` (see :mod:`.objects`) is where tiles and blobs go (default:
        ``data_dir``)."""
        data_dir = Path(data_dir)
        objects_dir = _objects_dir(data_dir, objects_url, s3)
        if (data_dir / "log.json").exists():
            raise LogError(f"{data_dir} already holds a log (log.json exists)")
        try:
            signer = Ed25519Signer.generate(origin)
        except NoteError as e:
            raise LogError(f"invalid origin {origin!r}: {e}") from e
        config = LogConfig(origin, max_batch=max_batch, period=period)
        data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(resolve_database_url(data_dir, database_url))
        store = LogStore(engine)
        store.create_tables()
        if store.read_cas() is not None:
            raise LogError(f"the database already holds a log ({store.read_cas().origin!r})")
        write_durable(data_dir / "log.skey", (signer.skey + "\n").encode(), mode=0o600)
        os.chmod(data_dir / "log.skey", 0o600)
        cp = Checkpoint(origin, 0, EMPTY_ROOT).sign(signer)
        (objects_dir / "tiles").mkdir(parents=True, exist_ok=True)
        (objects_dir / "blobs").mkdir(exist_ok=True)
        store.init_cas(SignedHead(origin, 0, EMPTY_ROOT, cp.note))
        publish_checkpoint(objects_dir / "tiles", cp.note)
        write_durable(data_dir / "log.json", config.to_json().encode())
        return cls(data_dir, config, signer, engine, objects_dir)

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        database_url: str | None = None,
        objects_url: str | Path | None = None,
        s3: S3Settings | None = None,
    ) -> Log:
        """Open an existing log, checking the store and tiles against the signed CAS record.

        ``objects_url`` must name the store the log was created with (default: ``data_dir``);
        what is read from it is checked against the signed record, never trusted.

        Raises :class:`LogStateError` (refusing to run) if they disagree.
        """
        data_dir = Path(data_dir)
        try:
            raw = json.loads((data_dir / "log.json").read_text())
        except FileNotFoundError:
            raise LogError(
                f"{data_dir} holds no log (no log.json); run `teelog log init`"
            ) from None
        config = LogConfig(**raw)
        try:
            signer = Ed25519Signer.from_skey((data_dir / "log.skey").read_text())
        except FileNotFoundError:
            raise LogError(f"{data_dir / 'log.skey'} is missing") from None
        if signer.name != config.origin:
            raise LogError(f"log.skey is for {signer.name!r}, log.json for {config.origin!r}")
        objects_dir = _objects_dir(data_dir, objects_url, s3)
        engine = make_engine(resolve_database_url(data_dir, database_url))
        log = cls(data_dir, config, signer, engine, objects_dir)
        log.store.create_tables()
        log.check()
        return log

    def check(self) -> SignedHead:
        """Verify the CAS record, the published checkpoint and the tiles agree; repair a missing
        publication; raise :class:`LogStateError` otherwise."""
        # The file first, then the record: see reconcile_published_checkpoint.
        published_text = read_published_checkpoint(self.tiles_dir)
        head = self.store.read_cas()
        if head is None:
            raise LogStateError("the database has no signed checkpoint record for this log")
        if head.origin != self.config.origin:
            raise LogStateError(
                f"the database holds the log {head.origin!r}, not {self.config.origin!r}"
            )
        # Repair a stale publication only while holding the lease (see the function's doc).
        repair = self.store.try_acquire(self.holder, self.config.lease_ttl)
        try:
            if repair:
                head = self.store.read_cas()
            reconcile_published_checkpoint(
                self.tiles_dir, head, self.signer, repair=repair, published_text=published_text
            )
        finally:
            if repair and not self._holding:
                self._release()
        # Loading the right edge recomputes the root from the tiles and compares it.
        self._new_sequencer(head)
        return head

    def _new_sequencer(self, head: SignedHead, dedup: DuplicateIndex | None = None) -> Sequencer:
        """A sequencer over this log's store and tiles at ``head`` (checks the right edge)."""
        return Sequencer(
            self.store,
            self.tiles_dir,
            self.signer,
            head,
            holder=self.holder,
            lease_ttl=self.config.lease_ttl,
            max_batch=self.config.max_batch,
            dedup=dedup,
        )

    def close(self) -> None:
        if self.witnessing is not None:
            self.witnessing.close()
        with self._mutex:
            if self._sequencer is not None and self._holding == 0:
                self._sequencer = None
            self.engine.dispose()

    # --- reading --------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self.config.origin

    @property
    def vkey(self) -> str:
        """The signed-note verifier key of the log."""
        return self.signer.vkey

    def checkpoint(self) -> Checkpoint:
        """The latest signed checkpoint (from the CAS record)."""
        head = self.store.read_cas()
        if head is None:
            raise LogStateError("the database has no signed checkpoint record")
        return parse_checkpoint(head.note)

    @property
    def size(self) -> int:
        return self.checkpoint().size

    def _read_tile_file(self, path: str) -> bytes:
        return (self.tiles_dir / path).read_bytes()

    def _reader_at_latest(self) -> TileReader:
        size = self.checkpoint().size
        return TileReader(self._read_tile_file, size, cache=self._tiles_cache)

    def entry(self, index: int) -> bytes:
        """The bytes of entry ``index`` (from its entry bundle)."""
        reader = self._reader_at_latest()
        if not 0 <= index < reader.size:
            raise IndexError(f"no entry {index}: the log has {reader.size} entries")
        return reader.entry(index)

    def index_of(self, entry: bytes) -> int | None:
        """The index of ``entry`` if it has been integrated (the duplicate index)."""
        with self._mutex:
            self._dedup.catch_up(self.checkpoint().size)
            return self._dedup.find(leaf_hash(entry))

    def _check_size(self, size: int, latest: int) -> None:
        if not 0 < size <= latest:
            raise ProofError(f"no tree of size {size}: the log has {latest} entries")

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (default: latest)."""
        reader = self._reader_at_latest()
        size = reader.size if size is None else size
        self._check_size(size, reader.size)
        return reader.inclusion_proof(index, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from tree ``size1`` to ``size2`` (default: latest)."""
        reader = self._reader_at_latest()
        size2 = reader.size if size2 is None else size2
        self._check_size(size2, reader.size)
        return reader.consistency_proof(size1, size2)

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` entries (from tiles)."""
        reader = self._reader_at_latest()
        if size:
            self._check_size(size, reader.size)
        return merkle_root(reader.nodes, size)

    def tlog_proof(self, index: int, size: int | None = None, extra: bytes | None = None) -> str:
        """A c2sp.org/tlog-proof@v1 for entry ``index`` against the checkpoint of ``size``
        (default: latest); ``size`` must be one the log signed."""
        if size is None:
            note = self.store.read_cas().note
        else:
            note = self.store.checkpoint_note(size)
            if note is None:
                raise ProofError(f"the log never signed a checkpoint of size {size}")
        cp = parse_checkpoint(note)
        cosigned = self.witnessing.current() if self.witnessing is not None else None
        if cosigned is not None and cosigned.note == note:
            note = cosigned.text  # the checkpoint with the cosignatures collected so far
        proof = self.inclusion_proof(index, cp.size)
        return format_tlog_proof(index, proof, note, extra)

    def published_file(self, path: str) -> Path:
        """The file behind tlog-tiles resource ``path`` (``tile/...``) if the log published it.

        A full tile is published once the latest checkpoint covers it; a partial tile or bundle
        of width W only if some signed checkpoint had exactly that width.  Files written by a
        batch that never committed are thus never served as immutable resources.  Raises
        :class:`TileError` saying why not.
        """
        addr = parse_tile_path(path)
        level = 0 if addr.level is None else addr.level
        shift = TILE_HEIGHT * level
        if addr.width == TILE_WIDTH:
            size = self.checkpoint().size
            if (addr.n + 1) * TILE_WIDTH > size >> shift:
                raise TileError(f"{path} is not covered by the latest checkpoint (size {size})")
        else:
            cells = addr.n * TILE_WIDTH + addr.width
            if not self.store.has_checkpoint_between(cells << shift, (cells + 1) << shift):
                raise TileError(f"no signed checkpoint has {path} as its partial tile")
        file = self.tiles_dir / addr.path
        if not file.is_file():
            raise TileError(f"{path} is no longer stored (use the full tile)")
        return file

    # --- writing --------------------------------------------------------------------------------

    @contextmanager
    def sequencing(self) -> Iterator[None]:
        """Hold the sequencer lease for a block (bulk imports, benchmarks, the server loop).

        Raises :class:`LogError` if another live process holds it."""
        with self._mutex:
            if not self._acquire():
                holder, _ = self.store.lock_holder()
                raise LogError(f"another process is sequencing this log ({holder})")
            self._holding += 1
        try:
            yield
        finally:
            with self._mutex:
                self._holding -= 1
                if self._holding == 0:
                    self._release()

    def _acquire(self) -> bool:
        if self._holding:
            return True
        until = time.time() + self.config.lease_ttl
        if not self.store.try_acquire(self.holder, self.config.lease_ttl):
            return False
        try:
            head = self.store.read_cas()
            if self._sequencer is None or self._sequencer.head != head:
                self._sequencer = None
                reconcile_published_checkpoint(self.tiles_dir, head, self.signer)
                self._sequencer = self._new_sequencer(head, self._dedup)
            self._sequencer.lease_until = until
        except BaseException:
            self._release()
            raise
        return True

    def _release(self) -> None:
        self.store.release(self.holder)

    def append(self, entry: bytes) -> int:
        """Append one entry; return its index once it is durable and signed."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries in order (duplicates get their existing index); return the indexes
        once they are durable and covered by a signed checkpoint."""
        entries = _checked(entries)
        if not entries:
            return []
        with self._mutex:
            if self._acquire():
                try:
                    return self._integrate_own(entries)
                finally:
                    if not self._holding:
                        self._release()
        ids = self.submit_many(entries)
        return [self.wait(i) for i in ids]

    def _integrate_own(self, entries: list[bytes]) -> list[int]:
        assert self._sequencer is not None
        out: list[int] = []
        step = self.config.max_batch
        for i in range(0, len(entries), step):
            out += self._sequencer.integrate(entries[i : i + step])
        self._offer_to_witnesses()
        return out

    def _offer_to_witnesses(self) -> None:
        """Hand the newly signed checkpoint to the witness workers (never blocks)."""
        if self.witnessing is not None and self._sequencer is not None:
            self.witnessing.offer(self._sequencer.head.note)

    def _publish_cosigned(self, cosigned: Cosigned) -> None:
        """Re-publish ``tiles/checkpoint`` with cosignatures, if it is still the latest."""
        with self._mutex:
            if self._sequencer is not None and self._sequencer.head.note == cosigned.note:
                publish_checkpoint(self.tiles_dir, cosigned.text)

    def submit(self, entry: bytes) -> int:
        """Queue one entry for the sequencer; return its pending sequence number."""
        return self.submit_many([entry])[0]

    def submit_many(self, entries: Sequence[bytes]) -> list[int]:
        entries = _checked(entries)
        return self.store.submit([(leaf_hash(e), e) for e in entries])

    def wait(self, pending_id: int, timeout: float = 60.0) -> int:
        """Wait until pending entry ``pending_id`` is integrated; return its index.

        If no live sequencer holds the lease, integrate pending entries here."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            waiting, idx = self.store.take_result(pending_id)
            if idx is not None:
                return idx
            if not waiting:
                raise LogError(f"pending entry {pending_id} is unknown or was already collected")
            if self.integrate_pending():
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"pending entry {pending_id} not integrated in {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def integrate_pending(self) -> int:
        """Sequence everything pending if the lease is free; return how many were taken."""
        with self._mutex:
            if not self._acquire():
                return 0
            try:
                assert self._sequencer is not None
                total = 0
                while True:
                    self._sequencer.integrate(())
                    taken = self._sequencer.last.pending
                    total += taken
                    if taken < self.config.max_batch:
                        if total:
                            self._offer_to_witnesses()
                        return total
            finally:
                if not self._holding:
                    self._release()

    def run_sequencer(self, stop: threading.Event, period: float | None = None) -> None:
        """Integrate pending entries every ``period`` seconds until ``stop`` is set (blocking)."""
        period = self.config.period if period is None else period
        while not stop.is_set():
            self.integrate_pending()
            stop.wait(period)

    @property
    def last_batch(self) -> BatchStats | None:
        """Timings of the last batch this process sequenced (benchmarks, metrics)."""
        return None if self._sequencer is None else self._sequencer.last


def _objects_dir(data_dir: Path, url: str | Path | None, s3: S3Settings | None) -> Path:
    """The directory holding ``tiles/`` and ``blobs/`` for ``objects_url``.

    The sequencer writes tiles and the blob store files through :mod:`.fsio` today, so an
    ``s3://`` store is refused with a clear error rather than half-used.
    """
    if url is None or url == "":
        return data_dir
    if is_s3_url(url):
        raise LogError(
            f"objects URL {url!r}: the log cannot sequence onto an S3 store yet "
            "(log/objects.py has the S3Store; only directory stores are wired into Log)"
        )
    if isinstance(url, str) and "://" in url:
        raise LogError(f"objects URL {url!r} must be a directory or s3://bucket/prefix")
    return Path(url)


def _checked(entries: Sequence[bytes]) -> list[bytes]:
    """The entries as ``bytes``; raise before anything is queued if one is not bytes-like or
    does not fit an entry bundle."""
    out = []
    for e in entries:
        if type(e) is not bytes:
            if not isinstance(e, bytes | bytearray | memoryview):
                raise TypeError(f"log entries are bytes, not {type(e).__name__}")
            e = bytes(e)
        if len(e) > MAX_ENTRY_SIZE:
            check_entry(e)
        out.append(e)
    return out


__all__ = ["Log", "LogConfig", "LogError", "LogStateError", "TileError"]
