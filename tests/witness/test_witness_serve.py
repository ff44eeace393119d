"""``teelog witness`` as processes: init/vkey, the HTTP API, and kill -9 while cosigning."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from teelog.log.checkpoint import open_checkpoint, parse_checkpoint
from teelog.log.note import CosignatureVerifier, Ed25519Signer, parse_vkey
from witness_helpers import FakeLog, free_port, init_witness, serve_witness, write_config

ORIGIN = "example.org/served"


def test_init_prints_a_cosignature_vkey_and_vkey_repeats_it(tmp_path):
    vkey = init_witness(tmp_path / "w", "witness.test/a")
    key = parse_vkey(vkey)
    assert isinstance(key, CosignatureVerifier) and key.name == "witness.test/a"
    again = subprocess.run([sys.executable, "-m", "teelog", "witness", "vkey", "--data",
                            str(tmp_path / "w")], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == vkey
    second = subprocess.run([sys.executable, "-m", "teelog", "witness", "init", "--data",
                             str(tmp_path / "w"), "--name", "x"], capture_output=True, text=True)
    assert second.returncode == 1 and "exists" in second.stderr
    assert (tmp_path / "w" / "witness.key").stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_witness_never_rolls_back_or_cosigns_a_fork_across_kill_9(tmp_path):
    """kill -9 the witness while a client streams checkpoints; after each restart its state is
    at least the last size it answered 200 for, and a fork of that history is refused."""
    log_signer = Ed25519Signer.generate(ORIGIN)
    wvkey = parse_vkey(init_witness(tmp_path / "w", "witness.test/k"))
    config = write_config(tmp_path / "witness.toml", {ORIGIN: log_signer.vkey})
    log = FakeLog(log_signer)
    acknowledged = 0
    for _round in range(5):
        port = free_port()
        proc = serve_witness(tmp_path / "w", config, port)
        url = f"http://127.0.0.1:{port}/add-checkpoint"
        latest = httpx.get(
            f"http://127.0.0.1:{port}/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint")
        have = parse_checkpoint(latest.text).size if latest.status_code == 200 else 0
        assert have >= acknowledged  # nothing answered with 200 was lost
        if have:
            open_checkpoint(latest.text, log_signer.verifier, witnesses=[wvkey], quorum=1)
            fork = FakeLog(log_signer, tag=b" fork")
            fork.grow(have + 1)
            assert httpx.post(url, content=fork.body(have)).status_code == 422
        answered = threading.Event()
        killed = threading.Event()

        def stream(url: str = url, have: int = have, answered: threading.Event = answered,
                   killed: threading.Event = killed) -> None:
            nonlocal acknowledged
            old = have
            with httpx.Client(timeout=5) as client:
                while not killed.is_set():
                    log.grow(1)
                    try:
                        r = client.post(url, content=log.body(old))
                    except httpx.TransportError:
                        return
                    assert r.status_code == 200, r.text
                    old = log.tree.size
                    acknowledged = old
                    if old - have >= 3:
                        answered.set()

        t = threading.Thread(target=stream)
        t.start()
        assert answered.wait(30)
        proc.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
        proc.wait(timeout=10)
        killed.set()
        t.join(10)
        # the last request may have been persisted without its answer: the witness may be
        # one ahead of the client, which the next round recovers from with the 409 body
        log_size = log.tree.size
        assert acknowledged in (log_size, log_size - 1)
    assert acknowledged >= 15
