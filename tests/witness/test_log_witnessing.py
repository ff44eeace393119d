"""The log asks witnesses (log/witnessing.py) under a policy (log/policy.py): three real
``teelog witness serve`` processes on loopback, 2-of-3, one down, one stale, a forked log."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest
from teelog.log import Log
from teelog.log.checkpoint import parse_checkpoint
from teelog.log.note import Ed25519Signer
from teelog.log.policy import PolicyError, parse_policy
from teelog.log.witnessing import WitnessRefused, add_checkpoint
from teelog.witness.cosigner import CosignatureSigner
from witness_helpers import free_port, init_witness, serve_witness, write_config

ORIGIN = "example.org/witnessed-log"


def _wait_for(predicate, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _published_result(log: Log, size: int):
    policy = log.witnessing.policy
    text = (log.tiles_dir / "checkpoint").read_text()
    if parse_checkpoint(text).size != size:
        return None
    return policy.check(text, log.signer.verifier)


@pytest.mark.slow
def test_log_gets_a_quorum_survives_a_down_and_a_stale_witness_and_forks_are_refused(tmp_path):
    data = tmp_path / "log"
    Log.create(data, ORIGIN).close()
    shutil.copytree(data, tmp_path / "fork")  # same key, to grow another history later
    log_vkey = Log.open(data).vkey
    procs, ports, vkeys = {}, {}, {}
    for name in ("w1", "w2", "w3"):
        vkeys[name] = init_witness(tmp_path / name, f"witness.test/{name}")
        ports[name] = free_port()
        cfg = write_config(tmp_path / f"{name}.toml", {ORIGIN: log_vkey})
        procs[name] = serve_witness(tmp_path / name, cfg, ports[name])
    try:
        (data / "witness-policy").write_text(
            "# three local witnesses, any two\n"
            + "".join(f"witness {n} {vkeys[n]} http://127.0.0.1:{ports[n]}\n" for n in vkeys)
            + "group local 2 w1 w2 w3\nquorum local\n"
        )
        log = Log.open(data)
        log.append_many([b"entry %d" % i for i in range(10)])
        res = _wait_for(lambda: (r := _published_result(log, 10)) and len(r.cosigned) == 3 and r,
                        "three cosignatures on size 10")
        assert res.quorum_met and res.cosigned == ("w1", "w2", "w3")
        proof = log.tlog_proof(3)
        assert proof.count("\u2014 witness.test/") == 3  # receipts carry the cosignatures

        # w3 down: the log goes on and still meets 2-of-3
        shutil.copytree(tmp_path / "w3", tmp_path / "w3-stale")
        procs["w3"].kill()
        procs["w3"].wait()
        log.append_many([b"more %d" % i for i in range(5)])
        assert log.size == 15
        res = _wait_for(lambda: (r := _published_result(log, 15)) and r.quorum_met and r,
                        "quorum on size 15 with w3 down")
        assert "w3" not in res.cosigned
        assert not log.witnessing.policy.satisfied({"w1"})

        # w3 restarted from its stale state (size 10): 409 tells the log, which proves from 10
        shutil.rmtree(tmp_path / "w3")
        shutil.move(tmp_path / "w3-stale", tmp_path / "w3")
        procs["w3"] = serve_witness(tmp_path / "w3", tmp_path / "w3.toml", ports["w3"])
        log.append_many([b"after %d" % i for i in range(3)])
        res = _wait_for(lambda: (r := _published_result(log, 18)) and len(r.cosigned) == 3 and r,
                        "w3 catching up to size 18")

        # a forked log (same key, another history) is refused by every witness
        fork = Log.open(tmp_path / "fork")
        fork.append_many([b"forged %d" % i for i in range(20)])
        witnesses = log.witnessing.policy.witnesses
        with httpx.Client(timeout=5) as client:
            for name, w in witnesses.items():
                with pytest.raises(WitnessRefused, match=r"HTTP 422|409"):
                    add_checkpoint(client, w, fork.checkpoint().note, 20,
                                   log.witnessing.known_sizes[name], fork.consistency_proof)
        fork.close()
        log.close()
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_policy_groups_thresholds_and_errors():
    keys = {n: CosignatureSigner.generate(f"w.test/{n}").vkey for n in "abc"}
    text = "".join(f"witness {n} {k}\n" for n, k in keys.items())
    p = parse_policy(text + "group two 2 a b c\ngroup top all two a\nquorum top\n")
    assert p.satisfied({"a", "b"}) and not p.satisfied({"b", "c"}) and not p.satisfied({"a"})
    assert parse_policy(text + "quorum none\n").satisfied(set())
    log_vkey = Ed25519Signer.generate("l.test").vkey
    for bad, msg in [
        (text + "group g 4 a b c\nquorum g\n", "threshold"),
        (text + "group g 1 a x\nquorum g\n", "not defined"),
        (text, "no quorum"),
        (text + "quorum a\nquorum b\n", "twice"),
        (f"witness l {log_vkey}\nquorum l\n", "0x04"),
        (text + "witness a " + keys["a"] + "\nquorum a\n", "already defined"),
        (text + "frobnicate a\nquorum a\n", "unknown statement"),
        (f"witness a {keys['a']} ftp://x\nquorum a\n", "http"),
    ]:
        with pytest.raises(PolicyError, match=msg):
            parse_policy(bad)
