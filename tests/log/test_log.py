"""The Log: durable appends, duplicates, proofs, CAS record, lease; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_naive import naive_path, naive_subproof  # tests/log/log_naive.py
from teelog.log import (
    BlobError,
    BlobStore,
    EntryTooLarge,
    Log,
    LogError,
    LogStateError,
    ProofError,
    TlogProofError,
    dedup,
    leaf_hash,
    open_checkpoint,
    parse_checkpoint,
    parse_vkey,
    verify_consistency,
    verify_inclusion,
    verify_tlog_proof,
)
from teelog.log.checkpoint import Checkpoint
from teelog.log.merkle import MemoryTree, mth
from teelog.log.sequencer import read_right_edge
from teelog.log.storage import LOCK_NAME, CasConflict, LockLost, SequencerLock
from teelog.log.tiles import bundle_path, tile_path

ORIGIN = "teelog.test/log"


@pytest.fixture
def logs(tmp_path, database_url):
    """Open logs on one data directory and database (each one behaves as a process)."""
    opened: list[Log] = []

    class Factory:
        data = tmp_path / "data"
        url = database_url

        def create(self, **kw) -> Log:
            log = Log.create(self.data, ORIGIN, database_url=self.url, **kw)
            opened.append(log)
            return log

        def open(self) -> Log:
            log = Log.open(self.data, database_url=self.url)
            opened.append(log)
            return log

    yield Factory()
    for log in opened:
        log.close()


def test_appends_are_sequential_readable_and_provable(logs):
    log = logs.create()
    entries = [f"entry {i}".encode() for i in range(600)]
    assert log.append(entries[0]) == 0
    assert log.append_many(entries[1:300]) == list(range(1, 300))
    assert log.append_many(entries[300:]) == list(range(300, 600))
    cp = open_checkpoint(log.checkpoint().note, parse_vkey(log.vkey))
    assert cp.size == 600
    tree = MemoryTree(leaf_hash(e) for e in entries)
    assert cp.root == tree.root()
    for i in (0, 1, 255, 256, 511, 512, 599):
        assert log.entry(i) == entries[i]
        verify_inclusion(i, 600, leaf_hash(entries[i]), log.inclusion_proof(i, 600), cp.root)
    for old in (1, 255, 256, 300, 599):
        verify_consistency(old, 600, log.consistency_proof(old, 600), tree.root(old), cp.root)
        assert log.root(old) == tree.root(old)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 900), min_size=1, max_size=4), st.data())
def test_proofs_from_the_stored_log_equal_a_naive_recomputation(batches, data):
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.create(Path(tmp) / "data", ORIGIN)
        try:
            entries: list[bytes] = []
            for count in batches:
                batch = [b"e%d" % (len(entries) + i) for i in range(count)]
                log.append_many(batch)
                entries += batch
            leaves = [leaf_hash(e) for e in entries]
            size = len(entries)
            index = data.draw(st.integers(0, size - 1))
            at = data.draw(st.integers(index + 1, size))
            assert log.inclusion_proof(index, at) == naive_path(index, leaves[:at])
            old = data.draw(st.integers(1, size))
            assert log.consistency_proof(old, size) == naive_subproof(old, leaves, True)
            assert log.checkpoint().root == mth(leaves)
        finally:
            log.close()


def test_proofs_from_many_threads_while_the_log_grows(logs):
    log = logs.create()
    log.append_many([b"seed %d" % i for i in range(300)])
    errors: list[BaseException] = []
    stop = threading.Event()

    def prove() -> None:
        try:
            while not stop.is_set():
                cp = log.checkpoint()
                for index in (0, 137, cp.size - 1):
                    proof = log.inclusion_proof(index, cp.size)
                    verify_inclusion(index, cp.size, leaf_hash(log.entry(index)), proof, cp.root)
        except BaseException as e:  # reported below
            errors.append(e)

    readers = [threading.Thread(target=prove) for _ in range(4)]
    for t in readers:
        t.start()
    for k in range(10):
        log.append_many([b"more %d %d" % (k, i) for i in range(97)])
    stop.set()
    for t in readers:
        t.join(10)
    assert not errors, errors[0]


def test_reopened_log_continues_and_serves_the_same_proofs(logs):
    log = logs.create()
    log.append_many([b"%d" % i for i in range(1000)])
    proof = log.inclusion_proof(777, 1000)
    log.close()
    again = logs.open()
    assert again.inclusion_proof(777, 1000) == proof
    assert again.append(b"more") == 1000
    assert again.entry(1000) == b"more"


def test_duplicates_are_answered_with_the_existing_index(logs):
    log = logs.create()
    assert log.append_many([b"a", b"b", b"a", b"c", b"b"]) == [0, 1, 0, 2, 1]
    assert log.append(b"b") == 1
    assert log.checkpoint().size == 3
    assert log.index_of(b"c") == 2 and log.index_of(b"zzz") is None
    other = logs.open()
    assert other.append_many([b"d", b"a"]) == [3, 0]


def test_duplicates_of_old_entries_are_found_after_reopening(logs, monkeypatch):
    monkeypatch.setattr(dedup, "RECENT", 4)  # force the exact search in the level-0 tiles
    log = logs.create()
    log.append_many([b"%d" % i for i in range(600)])
    log.close()
    again = logs.open()
    assert again.append_many([b"5", b"599", b"new", b"300"]) == [5, 599, 600, 300]
    assert again.index_of(b"256") == 256 and again.index_of(b"absent") is None
    assert again.checkpoint().size == 601


def test_entries_over_65535_bytes_are_rejected_and_nothing_is_appended(logs):
    log = logs.create()
    log.append(b"first")
    with pytest.raises(EntryTooLarge, match="65536 bytes"):
        log.append_many([b"ok", b"x" * 65536])
    with pytest.raises(EntryTooLarge):
        log.submit(b"x" * 70000)
    with pytest.raises(TypeError, match="bytes"):
        log.append("text")  # type: ignore[arg-type]
    assert log.checkpoint().size == 1
    assert log.append(b"x" * 65535) == 1
    assert log.entry(1) == b"x" * 65535


def test_proofs_for_sizes_and_indexes_that_do_not_exist_are_clear_errors(logs):
    log = logs.create()
    log.append_many([b"a", b"b", b"c"])
    with pytest.raises(ProofError, match="no tree of size 4"):
        log.inclusion_proof(0, 4)
    with pytest.raises(ProofError, match="not in a tree of size 2"):
        log.inclusion_proof(2, 2)
    with pytest.raises(ProofError, match="no tree of size 9"):
        log.consistency_proof(1, 9)
    with pytest.raises(ProofError, match="from size 3 to size 2"):
        log.consistency_proof(3, 2)
    with pytest.raises(IndexError, match="the log has 3 entries"):
        log.entry(3)
    with pytest.raises(ProofError, match="never signed a checkpoint of size 2"):
        log.tlog_proof(0, 2)


def test_tlog_proofs_verify_offline_and_reject_wrong_entries_and_keys(logs):
    log = logs.create()
    log.append_many([b"alpha", b"beta"])
    log.append(b"gamma")
    vkey = parse_vkey(log.vkey)
    proof = log.tlog_proof(1)
    got = verify_tlog_proof(proof, b"beta", vkey)
    assert got.index == 1 and got.checkpoint.size == 3
    # Against the earlier checkpoint of size 2, which the log signed.
    assert verify_tlog_proof(log.tlog_proof(1, 2), b"beta", vkey).checkpoint.size == 2
    with pytest.raises(TlogProofError, match="not at index 1"):
        verify_tlog_proof(proof, b"gamma", vkey)
    other = Log.create(logs.data.parent / "other", ORIGIN)
    try:
        with pytest.raises(TlogProofError, match="signature"):
            verify_tlog_proof(proof, b"beta", parse_vkey(other.vkey))
    finally:
        other.close()
    with pytest.raises(TlogProofError, match="must start with"):
        verify_tlog_proof(proof.replace("@v1", "@v2"), b"beta", vkey)
    with pytest.raises(TlogProofError, match="index"):
        verify_tlog_proof(proof.replace("index 1", "index 01"), b"beta", vkey)
    with_extra = log.tlog_proof(1, extra=b"context")
    assert verify_tlog_proof(with_extra, b"beta", vkey).extra == b"context"


def test_create_refuses_an_existing_log(logs):
    logs.create()
    with pytest.raises(LogError, match="already holds a log"):
        logs.create()
    with pytest.raises(LogError, match="invalid origin"):
        Log.create(logs.data.parent / "bad", "has space")


def test_open_refuses_when_tiles_disagree_with_the_signed_record(logs):
    log = logs.create()
    log.append_many([b"%d" % i for i in range(300)])
    log.close()
    partial = logs.data / "tiles" / tile_path(0, 1, 44)
    good = partial.read_bytes()
    partial.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    with pytest.raises(LogStateError, match="refusing to run"):
        logs.open()
    partial.unlink()
    with pytest.raises(LogStateError, match=r"tile/0/001\.p/44 is missing"):
        logs.open()
    partial.write_bytes(good)
    logs.open()


def test_a_right_edge_superseded_by_a_full_tile_is_read_from_the_full_tile(logs):
    # A process that read the record at size 300 while another sequencer grew the log to 512
    # finds the partials of size 300 deleted; it reads the full files' prefixes instead.
    log = logs.create()
    log.append_many([b"%d" % i for i in range(300)])
    head = log.store.read_cas()
    log.append_many([b"%d" % i for i in range(300, 512)])
    log.close()
    tiles = logs.data / "tiles"
    assert not (tiles / tile_path(0, 1, 44)).exists()
    assert not (tiles / bundle_path(1, 44)).exists()
    tile_builder, bundle_builder = read_right_edge(tiles, head.size)
    assert tile_builder.size == bundle_builder.size == 300
    assert tile_builder.root() == head.root
    # The prefix is checked, not trusted: a corrupted full tile disagrees with its bundle.
    full = tiles / tile_path(0, 1)
    good = full.read_bytes()
    full.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    with pytest.raises(LogStateError, match="does not hash to the level-0 tile of size 300"):
        read_right_edge(tiles, head.size)


def test_open_refuses_a_published_checkpoint_ahead_of_the_database(logs):
    log = logs.create()
    log.append_many([b"a", b"b"])
    ahead = Checkpoint(ORIGIN, 5, b"\x01" * 32).sign(log.signer)
    log.close()
    (logs.data / "tiles" / "checkpoint").write_text(ahead.note)
    with pytest.raises(LogStateError, match="ahead of the signed record"):
        logs.open()
    fork = Checkpoint(ORIGIN, 2, b"\x01" * 32).sign(log.signer)
    (logs.data / "tiles" / "checkpoint").write_text(fork.note)
    with pytest.raises(LogStateError, match="disagree on the root"):
        logs.open()


def test_a_missing_or_stale_published_checkpoint_is_republished_from_the_record(logs):
    log = logs.create()
    log.append(b"a")
    first = (logs.data / "tiles" / "checkpoint").read_text()
    log.append(b"b")
    latest = log.checkpoint().note
    log.close()
    (logs.data / "tiles" / "checkpoint").write_text(first)  # crash between commit and publish
    logs.open()
    assert (logs.data / "tiles" / "checkpoint").read_text() == latest
    (logs.data / "tiles" / "checkpoint").unlink()
    logs.open()
    assert (logs.data / "tiles" / "checkpoint").read_text() == latest
    (logs.data / "tiles" / "checkpoint").write_text(latest[:20])  # torn by a power loss
    logs.open()
    assert (logs.data / "tiles" / "checkpoint").read_text() == latest


def test_a_bystander_never_overwrites_the_published_checkpoint(logs):
    log = logs.create()
    log.append(b"a")
    first = (logs.data / "tiles" / "checkpoint").read_text()
    log.append(b"b")
    (logs.data / "tiles" / "checkpoint").write_text(first)
    with log.sequencing():  # someone else holds the lease: opening only checks
        logs.open()
        assert (logs.data / "tiles" / "checkpoint").read_text() == first
        log.append(b"c")  # the holder publishes as it sequences
    assert parse_checkpoint((logs.data / "tiles" / "checkpoint").read_text()).size == 3


def test_only_one_process_sequences_and_others_submit_to_it(logs):
    a = logs.create()
    b = logs.open()
    with a.sequencing():
        with pytest.raises(LogError, match="another process is sequencing"), b.sequencing():
            pass
        pid = b.submit(b"from b")
        result: list[int] = []
        waiter = threading.Thread(target=lambda: result.append(b.wait(pid)))
        waiter.start()
        # The sequencer integrates what others submitted first, then its own entries.
        assert a.append(b"from a") == 1
        waiter.join(10)
    assert result == [0]
    assert b.entry(0) == b"from b"


def test_a_background_sequencer_integrates_what_others_submit(logs):
    server = logs.create()
    stop = threading.Event()
    loop = threading.Thread(target=server.run_sequencer, args=(stop, 0.02))
    loop.start()
    try:
        client = logs.open()
        ids = client.submit_many([b"one", b"two", b"one"])
        assert [client.wait(i, timeout=10) for i in ids] == [0, 1, 0]
        with pytest.raises(LogError, match="unknown or was already collected"):
            client.wait(ids[0], timeout=1)
    finally:
        stop.set()
        loop.join(10)
    assert server.checkpoint().size == 2


def test_pending_ids_are_never_reused_while_results_wait(logs):
    log = logs.create()
    first = log.submit(b"x")
    log.integrate_pending()  # its submitter has not collected the result yet
    second = log.submit(b"y")
    assert second > first
    log.integrate_pending()
    assert (log.wait(second), log.wait(first)) == (1, 0)


def test_an_appender_sequences_itself_when_no_one_else_does(logs):
    a = logs.create()
    b = logs.open()
    pid = a.submit(b"queued by a")
    # b finds the lease free and integrates a's pending entry along with its own.
    assert b.append(b"appended by b") == 1
    assert b.wait(pid, timeout=1) == 0


def test_a_lease_held_by_a_dead_local_process_is_taken_over(logs):
    log = logs.create()
    dead = f"{socket.gethostname()}:999999:123:dead"
    _set_lease(log, dead, expires_at=1e12)
    assert log.append(b"x") == 0


def test_a_live_remote_lease_is_respected_until_it_expires(logs):
    log = logs.create()
    _set_lease(log, "elsewhere.example:1:1:abcd", expires_at=1e12)
    pid = log.submit(b"x")
    with pytest.raises(TimeoutError):
        log.wait(pid, timeout=0.3)
    _set_lease(log, "elsewhere.example:1:1:abcd", expires_at=0)
    assert log.wait(pid, timeout=5) == 0


def test_a_sequencer_that_lost_its_lease_commits_nothing(logs):
    log = logs.create()
    log.append(b"a")
    with log.sequencing():
        _set_lease(log, "elsewhere.example:1:1:abcd", expires_at=1e12)
        with pytest.raises(LockLost):
            log.append(b"b")
    assert log.checkpoint().size == 1
    _set_lease(log, None, expires_at=0)
    assert log.append(b"b") == 1  # the files written by the lost batch are simply rewritten
    assert logs.open().entry(1) == b"b"


def test_a_stalled_sequencer_whose_lease_was_taken_writes_no_tiles(logs):
    log = logs.create()
    log.append(b"a")
    with log.sequencing():
        _set_lease(log, "elsewhere.example:1:1:abcd", expires_at=1e12)
        log._sequencer.lease_until = time.time() + 1  # it stalled: its lease has nearly run out
        with pytest.raises(LockLost, match="nothing was written"):
            log.append(b"b")
    assert not (logs.data / "tiles" / "tile" / "entries" / "000.p" / "2").exists()
    assert log.checkpoint().size == 1


def test_the_cas_record_refuses_a_second_signer(logs):
    log = logs.create()
    log.append(b"a")
    other = logs.open()
    with log.sequencing():
        head = log.store.read_cas()
        # Someone else swaps the record (e.g. a second sequencer with a broken lock).
        forged = Checkpoint(ORIGIN, 2, b"\x02" * 32).sign(log.signer)
        log.store.commit_batch(
            head, type(head)(ORIGIN, 2, forged.root, forged.note), [], log.holder, 1e12
        )
        with pytest.raises(CasConflict, match="another sequencer"):
            log.append(b"b")
    with pytest.raises(LogStateError, match="refusing to run"):
        other.check()


def test_blob_store_is_content_addressed_and_checks_what_it_reads(tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.put(b"evidence")
    assert digest == hashlib.sha256(b"evidence").hexdigest()
    assert blobs.put(b"evidence") == digest
    assert blobs.get(digest) == b"evidence" and blobs.has(digest)
    assert blobs.path(digest) == tmp_path / "blobs" / digest[:2] / digest[2:]
    with pytest.raises(BlobError, match="no blob"):
        blobs.get("0" * 64)
    with pytest.raises(BlobError, match="not a lowercase hex"):
        blobs.get("../../etc/passwd")
    with pytest.raises(BlobError, match="not a lowercase hex"):
        blobs.path(digest.upper())
    path = blobs.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(BlobError, match="corrupted"):
        blobs.get(digest)


def _set_lease(log: Log, holder: str | None, expires_at: float) -> None:
    from sqlalchemy import update

    table = SequencerLock.__table__
    with log.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.name == LOCK_NAME)
            .values(holder=holder, expires_at=expires_at)
        )
