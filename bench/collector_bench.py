"""End-to-end collector throughput: 50 local nodes serving the recorded NEAR AI bundle.

Each node is a tiny keep-alive HTTP server answering ``GET /v1/attestation/report`` with the
real bundle (236 KB: gateway + model attestation with 8 H100s), all in a separate process so
that serving does not compete with the collector for its interpreter. The collector polls them
into a fresh log (SQLite, tiles and blobs on disk) with the clock pinned to the bundle's
collateral window (tests/data/tdx/README.md), so every poll does the full verification:
TDX quotes with dcap-qvl, event-log replay, 8 GPU evidence signatures and chains, bindings.

Phases, measured in one run:

1. ``sequential``: one thread, polls one after another; the time of each step (fetch, verify,
   blobs, log append, state/changes) is summed, giving the share of verification.
2. ``scheduled``: ``Collector.start()`` as ``teelog collect`` runs it (APScheduler, one job per
   node, interval 0.1 s so that demand exceeds capacity); polls and entries per second.

Run: ``.venv/bin/python bench/collector_bench.py [--quick] [--nodes N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUNDLE = ROOT / "tests/data/gpu/nearai-cloud-gpt-oss-120b-2026-04/attestation_report.json"
COLLATERAL = (
    ROOT / "tests/data/tdx/dcapqvl_tdx_v5.collateral.json",
    ROOT / "tests/data/tdx/nearmpc_2026_tdx_v4.collateral.json",
)
MODEL_AT = datetime.fromtimestamp(1773200000, UTC)  # the model quote's collateral window


# -- the nodes (separate process) ------------------------------------------------------------


def _serve_nodes(count: int, body: bytes, ports: multiprocessing.Queue) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                path = request.split(b" ", 2)[1]
                writer.write(head + body if path.startswith(b"/v1/attestation/report") else missing)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(count)]
        for server in servers:
            ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the collector ---------------------------------------------------------------------------


class StepTimer:
    """Sums wall time per step across threads."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.totals[name] += time.perf_counter() - start

        return timed


def _collector(
    data: Path, ports: list[int], interval: str, timer: StepTimer | None, processes: int = 0
):
    from teelog.attestation.collateral import Collateral
    from teelog.collector import Collector
    from teelog.collector.config import parse_config
    from teelog.collector.verification import report_verifier

    config = parse_config({
        "log": {"data": str(data)},
        "nodes": [
            {"name": f"node-{i:02d}", "url": f"http://127.0.0.1:{port}", "interval": interval,
             "format": "near-gateway", "model": "openai/gpt-oss-120b"}
            for i, port in enumerate(ports)
        ],
        "collateral": {"files": [str(p) for p in COLLATERAL]},
        "collector": {"verify_processes": processes},
    })
    verify = None if processes else report_verifier(Collateral.from_files(COLLATERAL))
    start = time.monotonic()

    def clock() -> datetime:  # the collateral window, advancing with real time
        from datetime import timedelta

        return MODEL_AT + timedelta(seconds=time.monotonic() - start)

    if timer is not None and verify is not None:
        verify = timer.wrap("verify", verify)
    elif verify is not None:  # CPU time of the verifying threads themselves
        inner = verify
        cpu["verify"] = 0.0

        def verify(*args):
            start_cpu = time.thread_time()
            try:
                return inner(*args)
            finally:
                with cpu_lock:
                    cpu["verify"] += time.thread_time() - start_cpu
    collector = Collector(config, clock=clock, verify=verify)
    if timer is not None:
        rec = collector.recorder
        rec.blobs.put = timer.wrap("blobs", rec.blobs.put)
        rec.log.append_many = timer.wrap("log append", rec.log.append_many)
        rec._update_state = timer.wrap("state + changes", rec._update_state)
        for poller in collector.attestation_pollers.values():
            poller.client.fetch_report = timer.wrap("fetch", poller.client.fetch_report)
    return collector


cpu: dict[str, float] = {}
cpu_lock = threading.Lock()


def _entries(collector) -> int:
    return collector.log.checkpoint().size


def sequential(data: Path, ports: list[int], polls: int) -> dict[str, float]:
    timer = StepTimer()
    collector = _collector(data, ports, "1h", timer)
    pollers = list(collector.attestation_pollers.values())
    pollers[0].poll(force=True)  # warm caches (collateral parse, imports)
    timer.totals.clear()
    t0 = time.perf_counter()
    for i in range(polls):
        outcome = pollers[i % len(pollers)].poll(force=True)
        assert outcome.error is None, outcome.error
    elapsed = time.perf_counter() - t0
    collector.close()
    out = {"elapsed": elapsed, "polls": polls, **timer.totals}
    out["other"] = elapsed - sum(timer.totals.values())
    return out


def scheduled(
    data: Path, ports: list[int], seconds: float, processes: int = 0
) -> dict[str, float]:
    cpu.clear()
    cpu0 = os.times()
    collector = _collector(data, ports, "0.1s", None, processes)
    before = _entries(collector)
    polls_before = _poll_count(collector)
    collector.start()
    time.sleep(1.0)  # ramp up
    e0, p0, t0 = _entries(collector), _poll_count(collector), time.perf_counter()
    time.sleep(seconds)
    e1, p1, t1 = _entries(collector), _poll_count(collector), time.perf_counter()
    batches = collector.recorder.appender.batches
    collector.close()  # joins the verification workers: their CPU time is then counted
    cpu1 = os.times()
    total = _entries(collector) - before
    assert e1 > before and p1 > polls_before
    main_cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    return {
        "entries/s": (e1 - e0) / (t1 - t0),
        "polls/s": (p1 - p0) / (t1 - t0),
        "entries/batch": total / max(batches, 1),
        "main cpu ms/entry": 1000 * main_cpu / total,
        "verify share": cpu.get("verify", 0.0) / main_cpu,
    }


def _poll_count(collector) -> int:
    from sqlmodel import Session, func, select
    from teelog.collector.models import CollectorNode

    with Session(collector.log.engine) as session:
        return int(session.exec(select(func.sum(CollectorNode.polls))).one() or 0)


def main() -> int:
    import logging

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: max instances" noise
    logging.getLogger("teelog").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (a few seconds)")
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=0, help="repeat count (default 3; 1 quick)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    polls = 100 if args.quick else 300
    seconds = 3.0 if args.quick else 8.0

    from teelog.log import Log

    body = BUNDLE.read_bytes()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=_serve_nodes, args=(args.nodes, body, queue), daemon=True)
    server.start()
    ports = [queue.get(timeout=30) for _ in range(args.nodes)]
    print(f"{args.nodes} nodes serving the NEAR AI bundle ({len(body):,} bytes); "
          f"{rounds} round(s); machine: {multiprocessing.cpu_count()} cores")
    seq_runs: list[dict[str, float]] = []
    sched_runs: dict[str, list[dict[str, float]]] = {"threads": [], "processes": []}
    try:
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(tmp) / "data"
                Log.create(data, origin="bench.example/teelog")
                seq_runs.append(sequential(data, ports, polls))
            for mode, processes in (("threads", 0), ("processes", multiprocessing.cpu_count())):
                with tempfile.TemporaryDirectory() as tmp:
                    data = Path(tmp) / "data"
                    Log.create(data, origin="bench.example/teelog")
                    sched_runs[mode].append(scheduled(data, ports, seconds, processes))
    finally:
        server.terminate()

    med = statistics.median
    elapsed = med(r["elapsed"] for r in seq_runs)
    print(f"\nsequential, 1 thread: {polls} polls, median {polls / elapsed:.1f} polls/s "
          f"({1000 * elapsed / polls:.2f} ms per poll)")
    for step in ("fetch", "verify", "blobs", "log append", "state + changes", "other"):
        share = med(r.get(step, 0.0) / r["elapsed"] for r in seq_runs)
        per = med(1000 * r.get(step, 0.0) / r["polls"] for r in seq_runs)
        print(f"  {step:<16} {per:7.2f} ms/poll  {100 * share:5.1f} %")
    print(f"\nscheduled (APScheduler, {args.nodes} jobs, interval 0.1 s, {seconds:g} s each), "
          "verification in the polling threads vs in worker processes:")
    for mode, runs in sched_runs.items():
        listed = ", ".join(f"{r['entries/s']:.1f}" for r in runs)
        print(f"  {mode:<9} polls/s {med(r['polls/s'] for r in runs):6.1f}  "
              f"verified entries/s {med(r['entries/s'] for r in runs):6.1f} (runs: {listed}); "
              f"{med(r['entries/batch'] for r in runs):.1f} entries per log batch")
        main = med(r["main cpu ms/entry"] for r in runs)
        if mode == "threads":
            share = med(r["verify share"] for r in runs)
            print(f"  {'':<9} collector process CPU {main:.2f} ms per entry, of which "
                  f"verification {100 * share:.0f} %, the rest (HTTP, JSON, entries, log "
                  f"append, bookkeeping, scheduling) {100 * (1 - share):.0f} %")
        else:
            print(f"  {'':<9} collector process CPU {main:.2f} ms per entry "
                  "(verification runs in the workers)")
    ratio = med(r["entries/s"] for r in sched_runs["processes"]) / med(
        r["entries/s"] for r in sched_runs["threads"]
    )
    print(f"  processes / threads: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
