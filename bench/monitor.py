"""Benchmark: how fast ``teelog monitor`` audits a served log (docs/PERFORMANCE.md, "Monitor").

Serves a synthetic log (receipt-sized entries, built with the log's own tile and bundle builders)
on 127.0.0.1 and measures, side by side in one run:

- the full audit of every entry (bundles read over HTTP, leaf hashes folded into the compact
  range, root compared with the signed checkpoint), without verdict re-verification;
- a steady-state poll that finds one new batch;
- the offline re-verification of one real attestation entry (the NEAR AI bundle, archived
  collateral), the per-entry cost that dominates when re-verification is on.

    .venv/bin/python bench/monitor.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from teelog.log.checkpoint import Checkpoint
from teelog.log.merkle import leaf_hash
from teelog.log.note import Ed25519Signer
from teelog.log.served import HttpLog
from teelog.log.tiles import BundleBuilder, TileBuilder
from teelog.monitor.follow import Monitor, reverify_with_teelog

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "bench.test/teelog"


class Served:
    def __init__(self) -> None:
        self.signer = Ed25519Signer.generate(ORIGIN)
        self.files: dict[str, bytes] = {}
        self.tiles, self.bundles = TileBuilder(), BundleBuilder()

    def append(self, entries: list[bytes]) -> None:
        for w in self.tiles.append([leaf_hash(e) for e in entries]):
            self.files[w.path] = w.data
        for w in self.bundles.append(entries):
            self.files[w.path] = w.data
        cp = Checkpoint(ORIGIN, self.tiles.size, self.tiles.root()).sign(self.signer)
        self.files["checkpoint"] = cp.note.encode()


def serve(files: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            data = files.get(self.path.removeprefix("/log/"))
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class NullSink:
    def deliver(self, alert: dict) -> None:
        pass


def receipt(i: int) -> bytes:
    # About the size of a real receipt entry (~900 bytes of canonical JSON).
    return json.dumps({"type": "receipt", "v": 1, "seq": i, "pad": "x" * 850}).encode()


def near_entry_blobs() -> tuple[bytes, list[bytes], datetime]:
    raw = REPO / "tests/data/gpu/nearai-cloud-gpt-oss-120b-2026-04/attestation_report.json"
    col = REPO / "tests/data/tdx/dcapqvl_tdx_v5.collateral.json"
    return raw.read_bytes(), [col.read_bytes()], datetime.fromtimestamp(1773200000, UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 20_000 if args.quick else 200_000
    batch, rounds = 1000, (5 if args.quick else 20)

    served = Served()
    for start in range(0, n, 10_000):
        served.append([receipt(i) for i in range(start, min(n, start + 10_000))])
    httpd = serve(served.files)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/log/"
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(
            HttpLog(url), served.signer.vkey, Path(tmp) / "s.json", NullSink(), reverify=None
        )
        t0 = time.perf_counter()
        result = mon.poll()
        full = time.perf_counter() - t0
        assert result.size == n and result.alerts == []
        polls = []
        for r in range(rounds):
            served.append([receipt(n + r * batch + i) for i in range(batch)])
            t0 = time.perf_counter()
            assert mon.poll().entries_read == batch
            polls.append(time.perf_counter() - t0)
    httpd.shutdown()

    raw, collateral, at = near_entry_blobs()
    times = []
    for _ in range(5 if args.quick else 20):
        t0 = time.perf_counter()
        reverify_with_teelog(raw, collateral, None, at)
        times.append(time.perf_counter() - t0)

    print(f"full audit of {n} entries over loopback HTTP: {full:.2f} s ({n / full:,.0f} entries/s)")
    polls.sort()
    print(
        f"poll with {batch} new entries: P50 {statistics.median(polls) * 1000:.1f} ms, "
        f"max {polls[-1] * 1000:.1f} ms ({rounds} polls)"
    )
    print(
        f"re-verify one NEAR AI attestation entry offline: median "
        f"{statistics.median(times) * 1000:.1f} ms ({len(times)} runs)"
    )
    digest = hashlib.sha256(served.files["checkpoint"]).hexdigest()[:12]
    print(f"(log checkpoint {digest}; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
