"""Explorer benchmark: page and lookup latency over a large synthetic log.

Builds a log of N entries (default 1,000,000; ``--quick``: 100,000) with the log's own API
(``Log.append_many`` under ``Log.sequencing``), indexes it with the explorer's indexer, then
times requests through the Flask app in-process (no network, so the figures are the
explorer's own cost):

- the entry page of a random receipt and of a random attestation (``/entries/<i>``),
- the node page of a random node (``/nodes/<name>``),
- the receipt lookup by signature (``GET /api/v1/receipts?signature=…``: index lookup, entry
  bytes, inclusion proof and tlog-proof).

Goals: page P99 ≤ 50 ms, lookup P99 ≤ 10 ms.

The data is synthetic and labelled so: one attestation entry per 50 entries, for 100 nodes,
each the real NEAR AI bundle's verdict with its measurements varied per node and per poll
(every 20th poll of a node changes its compose hash), all committing to the real report blob;
receipts carry random signatures (they were never signed and their entries say ``failed``).
``--dir`` keeps the built log for later runs (building 1M entries takes minutes).

    .venv/bin/python bench/explorer_bench.py [--quick] [--entries N] [--dir DIR] [--samples K]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import rfc8785

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "tests" / "data" / "gpu" / "nearai-cloud-gpt-oss-120b-2026-04"
BUNDLE = BUNDLE / "attestation_report.json"
COLLATERAL = [
    REPO / "tests" / "data" / "tdx" / "dcapqvl_tdx_v5.collateral.json",
    REPO / "tests" / "data" / "tdx" / "nearmpc_2026_tdx_v4.collateral.json",
]
NODES = 100
ATTESTATION_EVERY = 50


def _real_verdict() -> dict:
    from teelog.attestation import Collateral, verify_report

    result = verify_report(
        BUNDLE.read_bytes(),
        nonce="deadbeef00000000000000000000000000000000000000000000000000000001",
        at=1773200000,
        collateral=Collateral.from_files(COLLATERAL),
    )
    return result.to_json()


def _time(i: int) -> str:
    t = 1773200000 + i * 6
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _hex(rng: random.Random, n: int) -> str:
    return rng.randbytes(n).hex()


def build(data_dir: Path, n: int) -> None:
    from teelog.log import Log

    rng = random.Random(1)
    log = Log.create(data_dir, origin="bench.example/teelog")
    report_blob = log.blobs.put(BUNDLE.read_bytes())
    verdict = _real_verdict()
    polls = [0] * NODES
    batch: list[bytes] = []
    t0 = time.perf_counter()
    with log.sequencing():
        for i in range(n):
            node = i % NODES
            name = f"node-{node:03d}"
            if i % ATTESTATION_EVERY == 0:
                polls[node] += 1
                atts = json.loads(json.dumps(verdict["attestations"]))
                for a in atts:
                    m = a["measurements"]
                    m["quote_sha256"] = _hex(rng, 32)
                    m["instance_id"] = hashlib.sha1(name.encode()).hexdigest()
                    if polls[node] % 20 == 0:
                        m["compose_hash"] = _hex(rng, 32)
                entry = {
                    "type": "attestation",
                    "v": 1,
                    "node": name,
                    "url": f"https://{name}.bench.example/",
                    "format": "near-gateway",
                    "source": "poll",
                    "observed_at": _time(i),
                    "verified_at": _time(i),
                    "nonce": _hex(rng, 32),
                    "status": verdict["status"],
                    "attestations": atts,
                    "blobs": {"report": report_blob, "collateral": [], "verdict": None},
                }
            else:
                req, resp = _hex(rng, 32), _hex(rng, 32)
                entry = {
                    "type": "receipt",
                    "v": 1,
                    "node": name,
                    "node_instance": name,
                    "seq": i,
                    "chat_id": f"chatcmpl-{_hex(rng, 16)}",
                    "model": "openai/gpt-oss-120b",
                    "text": f"{req}:{resp}",
                    "request_sha256": req,
                    "response_sha256": resp,
                    "signed_at": _time(i),
                    "observed_at": _time(i),
                    "signatures": {
                        "ecdsa": {
                            "signing_address": "0x" + _hex(rng, 20),
                            "signature": "0x" + _hex(rng, 65),
                        },
                        "ed25519": None,
                    },
                    "attestation_index": None,
                    "status": "failed",
                    "checks": [
                        {
                            "name": "receipt.signature",
                            "status": "fail",
                            "detail": "synthetic benchmark receipt: never signed",
                        }
                    ],
                }
            batch.append(rfc8785.dumps(entry))
            if len(batch) == 4096:
                log.append_many(batch)
                batch = []
        if batch:
            log.append_many(batch)
    print(f"built {n} entries in {time.perf_counter() - t0:.1f} s", flush=True)
    log.close()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 entries")
    parser.add_argument("--entries", type=int, help="number of entries (default 1,000,000)")
    parser.add_argument("--dir", type=Path, help="keep (or reuse) the built log here")
    parser.add_argument("--samples", type=int, default=1000, help="requests per measurement")
    args = parser.parse_args()
    n = args.entries or (100_000 if args.quick else 1_000_000)
    tmp = None
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix="explorer-bench-"))
    if args.dir is None:
        tmp = data_dir
    try:
        from teelog.log import Log

        if not (data_dir / "log.json").exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            build(data_dir, n)
        log = Log.open(data_dir)
        size = log.checkpoint().size
        if size != n:
            print(f"{data_dir} holds {size} entries, not {n}", file=sys.stderr)
            return 2

        from teelog.explorer import create_app
        from teelog.explorer.store import Store

        app = create_app(data_dir, log=log, config={"index_interval": 3600.0})
        state = app.extensions["teelog"]
        t0 = time.perf_counter()
        indexed = state.indexer.catch_up()
        if indexed:
            print(f"indexed {indexed} entries in {time.perf_counter() - t0:.1f} s", flush=True)
        store: Store = state.store
        client = app.test_client()
        rng = random.Random(7)
        receipts = [i for i in rng.sample(range(size), args.samples * 2) if i % ATTESTATION_EVERY][
            : args.samples
        ]
        attestations = [rng.randrange(0, size, ATTESTATION_EVERY) for _ in range(args.samples)]
        signatures = []
        for i in receipts:
            signatures.append(json.loads(log.entry(i))["signatures"]["ecdsa"]["signature"])

        def get(url: str) -> tuple[float, float]:
            c0, t0 = time.thread_time(), time.perf_counter()
            resp = client.get(url)
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            assert resp.status_code == 200, (url, resp.status_code, resp.data[:200])
            return wall * 1000, cpu * 1000

        for url in ["/", "/nodes"] * 5:  # warm up templates and connections
            get(url)
        cases = {
            "entry page (receipt)": [f"/entries/{i}" for i in receipts],
            "entry page (attestation)": [f"/entries/{i}" for i in attestations],
            "node page": [f"/nodes/node-{rng.randrange(NODES):03d}" for _ in range(args.samples)],
            "receipt lookup by signature": [f"/api/v1/receipts?signature={s}" for s in signatures],
        }
        # Interleaved (one request of each kind in turn), so that noise from other work on
        # the machine falls on every kind alike.
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        for k in range(args.samples):
            for name, urls in cases.items():
                wall, cpu = get(urls[k % len(urls)])
                walls[name].append(wall)
                cpus[name].append(cpu)
        goals = {"receipt lookup by signature": 10.0}
        print(
            f"\nexplorer over {size:,} entries ({len(store.nodes())} nodes), "
            f"{args.samples} requests each (interleaved), in-process Flask test client, "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(
            f"{'request':30} {'wall P50':>9} {'wall P99':>9} {'CPU P50':>8} {'CPU P99':>8}"
            "  goal (P99)"
        )
        for name in cases:
            goal = goals.get(name, 50.0)
            p99 = pct(walls[name], 99)
            verdict = "met" if p99 <= goal else "missed"
            print(
                f"{name:30} {pct(walls[name], 50):9.2f} {p99:9.2f} "
                f"{pct(cpus[name], 50):8.2f} {pct(cpus[name], 99):8.2f}"
                f"  ≤ {goal:.0f} ms: {verdict} (wall)"
            )
        print(
            "(milliseconds; CPU = this thread's CPU time, the explorer's own cost without "
            "waiting for the CPU)"
        )
        log.close()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
