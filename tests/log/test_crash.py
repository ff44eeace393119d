"""Crash safety: appending processes are SIGKILLed at random points, again and again.

After every round: no acknowledged entry is lost, every checkpoint ever published is consistent
with the tree, the log reopens (its tiles agree with the CAS record), and appends continue.
Two children run at once, so the sequencer lease is also taken over from killed processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from teelog.log import Log, TileReader, parse_checkpoint, verify_consistency

CHILD = Path(__file__).with_name("crash_child.py")


def _spawn(data: Path, tag: str, seed: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(data), tag, str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _acknowledged(out: str) -> list[dict]:
    # A line cut by the kill was never acknowledged; only complete lines count.
    lines = [line for line in out.split("\n")[:-1] if line and line != "ready"]
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            raise AssertionError(repr(line[:300])) from None
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_sigkilled_appenders_lose_nothing_acknowledged_and_never_fork(tmp_path, database_url):
    rounds = 14 if database_url is None else 8
    rng = random.Random(20261122)
    data = tmp_path / "data"
    Log.create(data, "teelog.test/crash", database_url=database_url).close()
    env = dict(os.environ)
    if database_url:
        env["TEELOG_DATABASE_URL"] = database_url
    else:
        env.pop("TEELOG_DATABASE_URL", None)
    acked: dict[int, bytes] = {}
    checkpoints: set[str] = set()
    for r in range(rounds):
        children = [_spawn(data, f"r{r}c{c}", rng.randrange(1 << 30), env) for c in range(2)]
        for child in children:
            assert child.stdout.readline() == "ready\n", child.stderr.read()
        time.sleep(rng.uniform(0.05, 0.8))
        for child in children:
            time.sleep(rng.uniform(0, 0.1))
            child.send_signal(signal.SIGKILL)
        for child in children:
            # Not communicate(): it would bypass what readline() already buffered.
            out, err = child.stdout.read(), child.stderr.read()
            child.wait(timeout=30)
            assert child.returncode == -signal.SIGKILL, err
            for line in _acknowledged(out):
                for index, entry in line["acked"]:
                    assert acked.setdefault(index, entry.encode()) == entry.encode()
                checkpoints.add(line["checkpoint"])
        published = (data / "tiles" / "checkpoint").read_text()
        checkpoints.add(published)

        log = Log.open(data, database_url=database_url)  # refuses if tiles and CAS disagree
        try:
            latest = log.checkpoint()
            assert latest.size >= parse_checkpoint(published).size
            reader = TileReader(lambda p: (data / "tiles" / p).read_bytes(), latest.size)
            bundles = {n: reader.bundle(n) for n in {i // 256 for i in acked}}
            for index, entry in acked.items():
                got = bundles[index // 256][index % 256]
                assert got == entry, f"acknowledged entry {index} lost in round {r}"
            for note in checkpoints:
                cp = parse_checkpoint(note)
                assert log.root(cp.size) == cp.root
                if 0 < cp.size < latest.size:
                    proof = log.consistency_proof(cp.size, latest.size)
                    verify_consistency(cp.size, latest.size, proof, cp.root, latest.root)
        finally:
            log.close()
    assert len(acked) > 50, "the children should have acknowledged appends"
    print(f"{rounds} rounds, {2 * rounds} kills, {len(acked)} acknowledged entries")
    log = Log.open(data, database_url=database_url)
    try:
        size = log.checkpoint().size
        # Entries a killed child had queued but not yet sequenced are durable: the next batch
        # sequences them first, so the new entry lands at or after `size`, never before.
        index = log.append(b"after all the crashes")
        assert index >= size
        assert log.checkpoint().size == index + 1
        assert log.entry(index) == b"after all the crashes"
    finally:
        log.close()
