"""Benchmark of witnessing (issue 14): time to a quorum, and a witness's add-checkpoint rate.

    .venv/bin/python bench/witness_bench.py            # 200 quorum samples, 3,000 add-checkpoints
    .venv/bin/python bench/witness_bench.py --quick    # 50 and 1,000

1. Time from an entry's submission (``Log.append``) to ``tiles/checkpoint`` carrying a 2-of-3
   quorum of cosignatures for it, with three local ``teelog witness serve`` processes.
2. ``add-checkpoint`` throughput of one witness process (one uvicorn worker = one core): 8 logs,
   one client thread each posting consecutive checkpoints with consistency proofs over
   keep-alive connections; each answer is durable (fsync) before it is sent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from teelog.log import Log
from teelog.log.checkpoint import parse_checkpoint
from teelog.log.note import Ed25519Signer
from witness_helpers import (
    FakeLog,
    free_port,
    init_witness,
    serve_witness,
    write_config,
)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def time_to_quorum(tmp: Path, samples: int) -> list[float]:
    origin = "bench.example/witnessed"
    data = tmp / "log"
    Log.create(data, origin, period=0.05).close()
    vkey = Log.open(data).vkey
    procs, lines = [], []
    for i in range(3):
        wdir = tmp / f"w{i}"
        wv = init_witness(wdir, f"bench.witness/w{i}")
        port = free_port()
        procs.append(serve_witness(wdir, write_config(tmp / f"w{i}.toml", {origin: vkey}), port))
        lines.append(f"witness w{i} {wv} http://127.0.0.1:{port}\n")
    (data / "witness-policy").write_text("".join(lines) + "group g 2 w0 w1 w2\nquorum g\n")
    log = Log.open(data)
    out = []
    try:
        for n in range(samples):
            t0 = time.perf_counter()
            index = log.append(b"bench entry %d" % n)
            while True:
                text = (log.tiles_dir / "checkpoint").read_text()
                if parse_checkpoint(text).size == index + 1:
                    res = log.witnessing.policy.check(text, log.signer.verifier)
                    if res.quorum_met:
                        break
                time.sleep(0.001)
            out.append(time.perf_counter() - t0)
    finally:
        log.close()
        for p in procs:
            p.kill()
            p.wait()
    return out


def add_checkpoint_rate(tmp: Path, total: int, logs: int = 8) -> float:
    fakes = [FakeLog(Ed25519Signer.generate(f"bench.example/log{i}")) for i in range(logs)]
    wdir = tmp / "wt"
    init_witness(wdir, "bench.witness/throughput")
    port = free_port()
    cfg = write_config(tmp / "wt.toml", {f.signer.name: f.signer.vkey for f in fakes})
    proc = serve_witness(wdir, cfg, port)
    per = total // logs
    # request bodies are built first so that the clients measure the witness, not the log
    bodies = []
    for f in fakes:
        seq, old = [], 0
        for _ in range(per):
            f.grow(3)
            seq.append(f.body(old))
            old = f.tree.size
        bodies.append(seq)
    errors: list[str] = []

    def client(seq: list[bytes]) -> None:
        with httpx.Client(timeout=30) as c:
            for body in seq:
                r = c.post(f"http://127.0.0.1:{port}/add-checkpoint", content=body)
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=client, args=(s,)) for s in bodies]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    if errors:
        raise SystemExit(f"{len(errors)} add-checkpoint requests failed: {errors[0]}")
    return per * logs / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    samples, total = (50, 1000) if args.quick else (200, 3000)
    with tempfile.TemporaryDirectory() as tmp:
        q = time_to_quorum(Path(tmp), samples)
        print(f"submission -> 2-of-3 cosigned checkpoint, {samples} entries, 3 local witnesses: "
              f"P50 {statistics.median(q) * 1000:.0f} ms, P99 {pct(q, 99) * 1000:.0f} ms, "
              f"max {max(q) * 1000:.0f} ms (goal P99 <= 2000 ms)")
        rate = add_checkpoint_rate(Path(tmp), total)
        print(f"witness add-checkpoint, one process, 8 logs x {total // 8} checkpoints: "
              f"{rate:.0f}/s (goal >= 500/s)")


if __name__ == "__main__":
    main()
