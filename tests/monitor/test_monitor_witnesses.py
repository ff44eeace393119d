"""``teelog monitor --witness-policy``: split views against real ``teelog witness`` processes.

The operator shows the monitor one history and a witness another (same log key): the monitor
compares its verified checkpoint with each witness's latest view and raises ``log.split_view``
with both checkpoints kept as evidence; a witness with an older consistent view raises nothing.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from teelog.log.merkle import MemoryTree, leaf_hash
from teelog.log.note import Ed25519Signer
from teelog.log.policy import parse_policy
from teelog.log.witnessing import request_body
from teelog.monitor.state import evidence_dir
from test_monitor import ORIGIN, LogServer, ServedLog, Sink, monitor, receipt, types
from witness_helpers import free_port, init_witness, serve_witness, write_config


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


def _tree(log: ServedLog) -> MemoryTree:
    return MemoryTree(leaf_hash(e) for e in log.entries)


@pytest.mark.slow
def test_monitor_alerts_on_a_split_view_with_both_checkpoints_as_evidence(signer, tmp_path):
    server = LogServer()
    procs = []
    try:
        ports, vkeys = {}, {}
        cfg = write_config(tmp_path / "w.toml", {ORIGIN: signer.vkey})
        for name in ("honest", "fooled"):
            vkeys[name] = init_witness(tmp_path / name, f"witness.test/{name}")
            ports[name] = free_port()
            procs.append(serve_witness(tmp_path / name, cfg, ports[name]))
        policy = parse_policy(
            "".join(f"witness {n} {vkeys[n]} http://127.0.0.1:{ports[n]}\n" for n in vkeys)
            + "group all-of-them all honest fooled\nquorum all-of-them\n"
        )
        honest = ServedLog(signer)
        honest.append(*[receipt(i) for i in range(10)])
        fork = honest.copy()
        fork.append(*[b"forged %d" % i for i in range(5)])
        honest_at_10 = honest.files["checkpoint"].decode()
        honest.append(*[receipt(i) for i in range(10, 15)])
        # the honest witness saw size 10 of the real history, the fooled one the fork's 15
        for name, note in (("honest", honest_at_10), ("fooled", fork.files["checkpoint"].decode())):
            r = httpx.post(f"http://127.0.0.1:{ports[name]}/add-checkpoint",
                           content=request_body(0, [], note))
            assert r.status_code == 200, r.text
        server.log = honest
        sink = Sink()
        m = monitor(server, signer, tmp_path / "state.json", sink, witness_policy=policy)
        m.poll()
        assert types(sink.alerts) == ["log.split_view"]
        alert = sink.alerts[0]
        assert alert["witness"] == "fooled" and "another root for size 15" in alert["detail"]
        kept = sorted(p.name for p in (evidence_dir(tmp_path / "state.json")).rglob("*.checkpoint"))
        assert kept == ["verified.checkpoint", "witness-fooled.checkpoint"]
        m.poll()
        assert len(sink.alerts) == 1  # once per event

        # the honest log grows: the fooled witness's 15 is now checked by a consistency proof
        honest.append(*[receipt(i) for i in range(15, 20)])
        m.poll()
        assert types(sink.alerts) == ["log.split_view", "log.split_view"]
        assert "not consistent with size 20" in sink.alerts[1]["detail"]
        assert base64.b64decode(sink.alerts[1]["verified"]["root"]) == _tree(honest).root()
    finally:
        server.close()
        for p in procs:
            p.kill()
            p.wait()


def test_no_split_view_when_every_witness_saw_a_prefix(signer, tmp_path):
    server = LogServer()
    procs = []
    try:
        vkey = init_witness(tmp_path / "w", "witness.test/w")
        port = free_port()
        procs.append(serve_witness(tmp_path / "w", write_config(
            tmp_path / "w.toml", {ORIGIN: signer.vkey}), port))
        policy = parse_policy(f"witness w {vkey} http://127.0.0.1:{port}\nquorum w\n")
        log = ServedLog(signer)
        log.append(*[receipt(i) for i in range(7)])
        httpx.post(f"http://127.0.0.1:{port}/add-checkpoint",
                   content=request_body(0, [], log.files["checkpoint"].decode()))
        log.append(*[receipt(i) for i in range(7, 12)])
        server.log = log
        sink = Sink()
        monitor(server, signer, tmp_path / "s.json", sink, witness_policy=policy).poll()
        assert sink.alerts == []
    finally:
        server.close()
        for p in procs:
            p.kill()
            p.wait()
