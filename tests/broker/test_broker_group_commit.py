"""Group commit of decisions: concurrent releases share one log append, and still no JWE
leaves the broker before its entry is in a signed checkpoint; a failed batch fails closed
for every request in it."""

from __future__ import annotations

import hashlib
import threading

import pytest
from broker_helpers import SAMPLE_POLICY, Guest, entry_at, make_setup
from starlette.testclient import TestClient
from teelog.broker.app import create_app
from teelog.broker.group_commit import GroupCommit
from teelog.log import Log, leaf_hash, verify_inclusion

N = 6


class GatedLog:
    """Wraps ``Log.append_many``: the first call blocks until ``gate`` opens (so the other
    requests queue behind it), and calls numbered in ``fail`` raise instead of appending."""

    def __init__(self, log: Log, fail: frozenset[int] = frozenset()) -> None:
        self.log = log
        self.fail = fail
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def append_many(self, entries):
        number = len(self.calls)
        self.calls.append(len(entries))
        if number == 0:
            self.entered.set()
            assert self.gate.wait(30)
        if number in self.fail:
            raise OSError("disk gone")
        return self.log.append_many(entries)


def _attested(s, count):
    guests, tokens = [], []
    for _ in range(count):
        # A client each: one shared client would send the last guest's session cookie.
        g = Guest(TestClient(create_app(s.broker)))
        g.auth()
        r = g.attest()
        assert r.status_code == 200, r.text
        guests.append(g)
        tokens.append(r.json()["token"])
    return guests, tokens


def _queued(batcher: GroupCommit) -> int:
    with batcher._cond:
        return len(batcher._queue)


def _wait_for(predicate, what):
    done = threading.Event()
    for _ in range(3000):
        if predicate():
            return
        done.wait(0.01)
    pytest.fail(f"never happened: {what}")


def _run_gated(s, gated, guests, tokens):
    """Fetch with every guest at once; the first append is held until all the others are
    queued, and while it is held no response may have come back."""
    s.broker.decisions = GroupCommit(gated.append_many, lambda: s.log.checkpoint().size,
                                     keep_history=10)
    responses: dict[int, object] = {}

    def fetch(i):
        responses[i] = guests[i].fetch(token=tokens[i])

    first = threading.Thread(target=fetch, args=(0,))
    first.start()
    assert gated.entered.wait(30)
    others = [threading.Thread(target=fetch, args=(i,)) for i in range(1, len(guests))]
    for t in others:
        t.start()
    _wait_for(lambda: _queued(s.broker.decisions) == len(guests) - 1, "all requests queued")
    assert responses == {}  # nothing released while its entry is not yet appended
    gated.gate.set()
    for t in [first, *others]:
        t.join(60)
    return [responses[i] for i in range(len(guests))]


def test_concurrent_releases_share_one_append_and_each_is_in_its_checkpoint(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guests, tokens = _attested(s, N)
    gated = GatedLog(s.log)
    responses = _run_gated(s, gated, guests, tokens)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    # One append for the first request, one for the N - 1 that queued behind it.
    assert gated.calls == [1, N - 1]
    assert [b.entries for b in s.broker.decisions.history] == [1, N - 1]
    indexes = [int(r.headers["Teelog-Entry-Index"]) for r in responses]
    assert len(set(indexes)) == N
    cp = s.log.checkpoint()
    for guest, r, index in zip(guests, responses, indexes, strict=True):
        size = int(r.headers["Teelog-Checkpoint-Size"])
        assert index < size <= cp.size
        raw = s.log.entry(index)
        entry = entry_at(s.log, index)
        # Each response is the JWE its own entry names, to its own requester.
        assert entry["decision"] == "released"
        assert entry["response_sha256"] == hashlib.sha256(r.content).hexdigest()
        assert entry["requester"]["tee_pubkey_thumbprint"] == guest.private.thumbprint()
        verify_inclusion(index, size, leaf_hash(raw), s.log.inclusion_proof(index, size),
                         s.log.root(size))


def test_a_failed_batch_answers_503_to_every_request_in_it(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guests, tokens = _attested(s, N)
    size_before = s.log.size
    gated = GatedLog(s.log, fail=frozenset({1}))  # the first append works, the batch fails
    responses = _run_gated(s, gated, guests, tokens)
    assert gated.calls == [1, N - 1]
    assert responses[0].status_code == 200
    for r in responses[1:]:
        assert r.status_code == 503, r.text
        assert r.json()["type"].endswith("/LogUnavailable")
        assert "ciphertext" not in r.text and "Teelog-Entry-Index" not in r.headers
    assert s.log.size == size_before + 1  # only the first decision is on the log


def test_group_commit_returns_each_entry_its_own_index():
    appended: list[bytes] = []

    def append_many(entries):
        start = len(appended)
        appended.extend(entries)
        return list(range(start, start + len(entries)))

    batcher = GroupCommit(append_many, lambda: len(appended), max_batch=3)
    results: dict[bytes, tuple[int, int]] = {}

    def one(i):
        entry = f"e{i}".encode()
        results[entry] = batcher.append(entry)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 20
    for entry, (index, size) in results.items():
        assert appended[index] == entry and size > index


def test_group_commit_reports_a_short_answer_from_the_log_as_an_error():
    batcher = GroupCommit(lambda entries: [], lambda: 0)
    with pytest.raises(RuntimeError, match="0 indexes for 1 entries"):
        batcher.append(b"x")
    with pytest.raises(ValueError):
        GroupCommit(lambda entries: [], lambda: 0, max_batch=0)
