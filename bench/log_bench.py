"""Benchmark of the transparency log: sequencing, durable throughput, cold proofs, disk use.

    .venv/bin/python bench/log_bench.py            # 1,000,000 entries of ~1 KB, 1,000 per batch
    .venv/bin/python bench/log_bench.py --quick    # 100,000 entries

Per batch (hash + tiles + bundles + fsync + sign + CAS commit) it reports P50/P99/max; the
sustained rate is entries / total time spent in ``append_many``.  Cold proofs are measured in a
fresh process after the run (new ``Log.open``, empty tile caches): each sample uses a new tile
reader, so every tile it needs is read from disk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from teelog.log import Log, TileReader, leaf_hash, verify_consistency, verify_inclusion


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def disk_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(FileNotFoundError):  # a file removed while walking
                total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


def run_appends(data: Path, n: int, batch: int, size: int) -> dict:
    log = Log.create(data, "bench.teelog.example/log", max_batch=batch)
    per_batch: list[float] = []
    parts = {"hash": [], "write": [], "sign": [], "commit": []}
    files: list[int] = []
    rng = random.Random(1)
    payload = rng.randbytes(size * 4)
    spent = 0.0
    cpu0 = os.times()
    wall0 = time.perf_counter()
    with log.sequencing():
        for start in range(0, n, batch):
            # ~1 KB entries, each unique (index prefix), cheap to generate.
            entries = [
                b"%d:" % i + payload[(i * 7) % (size * 3) :][: size - 8]
                for i in range(start, min(start + batch, n))
            ]
            t = time.perf_counter()
            log.append_many(entries)
            dt = time.perf_counter() - t
            spent += dt
            per_batch.append(dt)
            st = log.last_batch
            parts["hash"].append(st.hash_s)
            parts["write"].append(st.write_s)
            parts["sign"].append(st.sign_s)
            parts["commit"].append(st.commit_s)
            files.append(st.files)
    wall = time.perf_counter() - wall0
    cpu1 = os.times()
    cp = log.checkpoint()
    log.close()
    return {
        "entries": n,
        "batch": batch,
        "entry_bytes": size,
        "batch_p50_ms": pct(per_batch, 50) * 1e3,
        "batch_p99_ms": pct(per_batch, 99) * 1e3,
        "batch_max_ms": max(per_batch) * 1e3,
        "parts_p50_ms": {k: statistics.median(v) * 1e3 for k, v in parts.items()},
        "parts_p99_ms": {k: pct(v, 99) * 1e3 for k, v in parts.items()},
        "user_cpu_ms_per_batch": (cpu1.user - cpu0.user) / len(per_batch) * 1e3,
        "kernel_cpu_ms_per_batch": (cpu1.system - cpu0.system) / len(per_batch) * 1e3,
        "files_per_batch": statistics.mean(files),
        "append_seconds": spent,
        "wall_seconds": wall,
        "entries_per_s": n / spent,
        "size": cp.size,
    }


def fsync_floor(base: Path, rounds: int = 200) -> dict:
    """This machine's floor, measured in the same run: write 8 KiB + fsync, and 256 KiB + fsync."""
    out = {}
    for label, size in (("fsync_8k_ms", 8192), ("fsync_256k_ms", 262144)):
        ts = []
        data = os.urandom(size)
        for i in range(rounds):
            path = base / f"floor{i}"
            t = time.perf_counter()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            ts.append(time.perf_counter() - t)
            path.unlink()
        out[label + "_p50"] = pct(ts, 50) * 1e3
        out[label + "_p99"] = pct(ts, 99) * 1e3
    return out


def cold_proofs(data: Path, samples: int) -> dict:
    """Run in a fresh process: open the log, then time proofs with empty tile caches."""
    t = time.perf_counter()
    log = Log.open(data)
    open_s = time.perf_counter() - t
    cp = log.checkpoint()
    n = cp.size
    rng = random.Random(7)
    t = time.perf_counter()
    first = log.inclusion_proof(rng.randrange(n), n)  # the Log's own first proof after restart
    first_s = time.perf_counter() - t
    assert first
    inc, con, tiles_read = [], [], []
    for _ in range(samples):
        reads = []

        def fetch(path: str, reads: list = reads) -> bytes:
            reads.append(path)
            return (log.tiles_dir / path).read_bytes()

        index = rng.randrange(n)
        size = rng.randrange(index + 1, n + 1)
        reader = TileReader(fetch, n, cache_tiles=0)
        t = time.perf_counter()
        proof = reader.inclusion_proof(index, size)
        inc.append(time.perf_counter() - t)
        tiles_read.append(len(set(reads)))
        root = log.root(size)
        verify_inclusion(index, size, leaf_hash(log.entry(index)), proof, root)
        old = rng.randrange(1, n)
        reader = TileReader(fetch, n, cache_tiles=0)
        t = time.perf_counter()
        cproof = reader.consistency_proof(old, n)
        con.append(time.perf_counter() - t)
        verify_consistency(old, n, cproof, log.root(old), cp.root)
    log.close()
    return {
        "open_ms": open_s * 1e3,
        "first_proof_after_open_ms": first_s * 1e3,
        "inclusion_p50_ms": pct(inc, 50) * 1e3,
        "inclusion_p99_ms": pct(inc, 99) * 1e3,
        "consistency_p50_ms": pct(con, 50) * 1e3,
        "consistency_p99_ms": pct(con, 99) * 1e3,
        "max_tiles_per_inclusion_proof": max(tiles_read),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 entries instead of 1,000,000")
    ap.add_argument("--entries", type=int)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--entry-bytes", type=int, default=1024)
    ap.add_argument("--dir", type=Path, help="where to build the log (default: a temp dir)")
    ap.add_argument("--samples", type=int, default=500, help="cold proof samples")
    ap.add_argument("--cold-proofs", type=Path, help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.cold_proofs:
        print(json.dumps(cold_proofs(args.cold_proofs, args.samples)))
        return 0
    n = args.entries or (100_000 if args.quick else 1_000_000)
    base = args.dir or Path(tempfile.mkdtemp(prefix="teelog-bench-", dir=os.getcwd()))
    data = base / "log"
    try:
        res = run_appends(data, n, args.batch, args.entry_bytes)
        child = subprocess.run(
            [sys.executable, __file__, "--cold-proofs", str(data), "--samples", str(args.samples)],
            capture_output=True,
            text=True,
            check=True,
        )
        res.update(json.loads(child.stdout))
        res.update(fsync_floor(base))
        total = disk_bytes(data)
        res["disk_bytes_per_entry"] = total / n
        res["tile_bytes_per_entry"] = disk_bytes(data / "tiles" / "tile") / n
        res["db_bytes_per_entry"] = (
            sum(
                disk_bytes(p) if p.is_dir() else p.stat().st_blocks * 512
                for p in data.glob("teelog.db*")
            )
            / n
        )
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(res, indent=2))
    print(
        f"\n{n:,} entries x {args.entry_bytes} B, {args.batch}/batch: "
        f"batch P50 {res['batch_p50_ms']:.1f} ms, P99 {res['batch_p99_ms']:.1f} ms "
        f"(max {res['batch_max_ms']:.1f}); {res['entries_per_s']:,.0f} durable entries/s; "
        f"cold inclusion P50/P99 {res['inclusion_p50_ms']:.2f}/{res['inclusion_p99_ms']:.2f} ms, "
        f"consistency {res['consistency_p50_ms']:.2f}/{res['consistency_p99_ms']:.2f} ms; "
        f"{res['disk_bytes_per_entry']:.0f} B/entry on disk; CPU per batch: user "
        f"{res['user_cpu_ms_per_batch']:.1f} ms, kernel {res['kernel_cpu_ms_per_batch']:.1f} ms; "
        f"fsync floor 8 KiB {res['fsync_8k_ms_p50']:.2f}/{res['fsync_8k_ms_p99']:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
