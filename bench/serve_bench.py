"""``teelog serve`` throughput: gunicorn (``--workers 2``) against the dev server (``--dev``).

Builds the explorer tests' log of real data (the NEAR AI bundle, 200 receipts), starts both
servers as ``teelog serve`` subprocesses on loopback, and drives each with the same closed
loop of C keep-alive clients (one thread each, in a client process of its own) cycling through
a mix of pages, API lookups, proofs, feeds and ``/log/`` reads. For each concurrency it prints
requests/s, P50 and P99 side by side; the summary compares the best requests/s each server
reaches with P99 at or under a common bound (the dev server's P99 at its best throughput,
so both are read at the same P99). Goal: gunicorn >= 2x the dev server.

    .venv/bin/python bench/serve_bench.py [--seconds 8] [--concurrency 4,8,16,32]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from itertools import cycle
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "explorer"))

from explorer_fixtures import NODE, build_log  # noqa: E402


def _paths(built) -> list[str]:
    receipt = built.receipts[0]
    m = built.verdict["attestations"][1]["measurements"]
    return [
        "/",
        "/api/v1/nodes",
        f"/api/v1/receipts?signature={receipt['signatures']['ecdsa']['signature']}",
        f"/entries/{built.attestation_indexes[0]}",
        f"/api/v1/search?q={m['compose_hash']}",
        f"/nodes/{quote(NODE)}",
        f"/entries/{built.receipt_indexes[3]}",
        f"/api/v1/entries/{built.receipt_indexes[5]}/proof",
        "/log/checkpoint",
        "/log/vkey",
        "/api/v1/entries?limit=50",
        "/feeds/changes.atom",
    ]


def _client(port: int, paths: list[str], clients: int, seconds: float, out) -> None:
    """Closed loop: ``clients`` threads, each one request at a time for ``seconds``."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def run(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mix = cycle(paths[offset % len(paths):] + paths[: offset % len(paths)])
        mine = []
        bad = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                conn.request("GET", next(mix))
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:  # every path of the mix answers 200
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send((lat, errors[0]))


def _measure(
    port: int, paths: list[str], clients: int, seconds: float
) -> tuple[float, float, float, int]:
    recv, send = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.Process(target=_client, args=(port, paths, clients, seconds, send))
    proc.start()
    lat, errors = recv.recv()
    proc.join()
    lat.sort()
    rps = len(lat) / seconds
    return rps, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, errors


def _start(data: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "teelog", "serve", "--data", str(data), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TEELOG_STALE_AFTER": "86400"},
    )
    m = re.search(r":(\d+)/", proc.stdout.readline())
    assert m, "teelog serve did not start"
    return proc, int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", default="4,8,16,32")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        built = build_log(data, receipts=200)
        built.log.close()
        paths = _paths(built)
        results: dict[str, list[tuple[int, float, float, float, int]]] = {}
        for name, extra in (("dev", ("--dev",)), ("gunicorn-2", ("--workers", "2"))):
            proc, port = _start(data, *extra)
            try:
                _measure(port, paths, 4, 2.0)  # warm-up: workers booted, caches filled
                results[name] = [(c, *_measure(port, paths, c, args.seconds)) for c in levels]
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    print(f"{'clients':>7} | {'dev req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} | "
          f"{'gunicorn-2 req/s':>16} {'p50 ms':>7} {'p99 ms':>7} {'err':>4}")
    for (c, drps, dp50, dp99, derr), (_, grps, gp50, gp99, gerr) in zip(
        results["dev"], results["gunicorn-2"], strict=True
    ):
        print(f"{c:>7} | {drps:>9.0f} {dp50:>7.1f} {dp99:>7.1f} {derr:>4} | "
              f"{grps:>16.0f} {gp50:>7.1f} {gp99:>7.1f} {gerr:>4}")
    best_dev = max(results["dev"], key=lambda r: r[1])
    bound = best_dev[3]
    fits = [r for r in results["gunicorn-2"] if r[3] <= bound]
    best_g = max(fits, key=lambda r: r[1]) if fits else None
    print(f"at P99 <= {bound:.1f} ms (the dev server's P99 at its best): "
          f"dev {best_dev[1]:.0f} req/s,"
          + (f" gunicorn-2 {best_g[1]:.0f} req/s, ratio {best_g[1] / best_dev[1]:.2f}x"
             if best_g else " gunicorn-2: no level within the bound"))


if __name__ == "__main__":
    main()
