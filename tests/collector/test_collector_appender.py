"""Group commit: concurrent appends share log batches, each caller gets its own indexes and
its own bookkeeping result, and failures reach exactly the callers they concern."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from teelog.collector.appender import GroupAppender
from teelog.collector.models import StateDB, create_tables


def test_concurrent_appends_are_batched_and_each_caller_gets_its_indexes(log):
    create_tables(log.engine)
    appender = GroupAppender(log, StateDB(log.engine))
    entries = [f"entry {i}".encode() for i in range(200)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        indexes = list(pool.map(appender.append, entries))
    assert sorted(indexes) == list(range(200))
    for entry, index in zip(entries, indexes, strict=True):
        assert log.entry(index) == entry
    assert appender.batches < 200  # some calls shared a batch


def test_bookkeeping_runs_in_the_batch_transaction_and_failures_stay_local(log):
    create_tables(log.engine)
    appender = GroupAppender(log, StateDB(log.engine))
    barrier = threading.Barrier(8)

    def work(i: int):
        def after(session, indexes):
            if i == 3:
                raise ValueError("bookkeeping of caller 3 failed")
            session.execute(text("SELECT 1"))
            return ("ok", indexes)

        barrier.wait()
        return appender.append_with([f"e{i}".encode()], after)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(work, i) for i in range(8)]
    for i, future in enumerate(futures):
        if i == 3:
            with pytest.raises(ValueError, match="caller 3"):
                future.result()
        else:
            indexes, result = future.result()
            assert result == ("ok", indexes)
    assert log.checkpoint().size == 8  # the failing caller's entry is in the log all the same


class FailingLog:
    def append_many(self, entries):
        raise OSError("disk full")


def test_a_failed_log_append_reaches_every_caller_of_the_batch(log):
    appender = GroupAppender(FailingLog(), StateDB(log.engine))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(appender.append, b"x") for _ in range(4)]
    for future in futures:
        with pytest.raises(OSError, match="disk full"):
            future.result()
