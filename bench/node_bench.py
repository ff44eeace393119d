"""Benchmark: what the signing node adds on top of its upstream.

Starts the demo upstream (``teelog.node.demo_upstream``) and a node in front of it
(``teelog node --quote-provider none --gpu-evidence none``), each in its own process, and drives
both side by side from this process with a minimal keep-alive HTTP/1.1 client (asyncio streams,
so the load generator costs as little CPU as possible):

1. Added latency at concurrency 1: requests alternate between the upstream directly and the
   node, non-streaming chat and streaming chat (time to the last byte); P50/P99 of each and the
   difference of the P50s.
2. Throughput at 64 concurrent streams: 64 keep-alive connections each streaming chat
   completions back to back for a fixed time, alternating rounds direct / through the node;
   completed streams per second and the ratio node / direct (median over rounds). Run twice:
   with an unpaced upstream (every chunk at once: the CPU-bound worst case) and with a paced one
   (``--chunk-delay``, tokens arriving as a GPU would produce them).

Every request through the node is signed with both keys and journaled (SQLite), as in
production. Usage::

    .venv/bin/python bench/node_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "teelog-demo-echo"
PROMPT = "the quick brown fox jumps over the lazy dog " * 2  # 16 words -> 16 streamed tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Conn:
    """One keep-alive HTTP/1.1 connection; responses read whole (Content-Length or chunked)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def post(self, path: str, body: bytes, headers: bytes = b"") -> tuple[int, int]:
        """Send one POST; return (status, body bytes received)."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + headers + b"\r\n" + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                fields[k.strip().lower()] = v.strip()
        if b"content-length" in fields:
            n = int(fields[b"content-length"])
            await self.reader.readexactly(n)
            return status, n
        total = 0
        while True:  # chunked transfer coding (RFC 9112 §7.1)
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            total += size
            if size == 0:
                return status, total

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def body(stream: bool) -> bytes:
    return json.dumps({"model": MODEL, "stream": stream,
                       "messages": [{"role": "user", "content": PROMPT}]}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(direct: int, node: int, n: int, stream: bool) -> dict[str, float]:
    a, b = Conn(direct), Conn(node)
    await a.open()
    await b.open()
    payload = body(stream)
    times: dict[str, list[float]] = {"direct": [], "node": []}
    for _ in range(20):  # warm-up: connections, caches, first-call costs
        await a.post("/v1/chat/completions", payload)
        await b.post("/v1/chat/completions", payload)
    for i in range(n):
        order = [("direct", a), ("node", b)] if i % 2 == 0 else [("node", b), ("direct", a)]
        for name, conn in order:
            t0 = time.perf_counter()
            status, _ = await conn.post("/v1/chat/completions", payload)
            times[name].append((time.perf_counter() - t0) * 1000)
            assert status == 200, status
    await a.close()
    await b.close()
    return {
        "direct_p50": pct(times["direct"], 0.5), "direct_p99": pct(times["direct"], 0.99),
        "node_p50": pct(times["node"], 0.5), "node_p99": pct(times["node"], 0.99),
        "added_p50": pct(times["node"], 0.5) - pct(times["direct"], 0.5),
        "added_p99": pct(times["node"], 0.99) - pct(times["direct"], 0.99),
    }


async def throughput(port: int, concurrency: int, seconds: float) -> float:
    conns = [Conn(port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    payload = body(True)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            status, _ = await conn.post("/v1/chat/completions", payload)
            assert status == 200, status
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*(c.close() for c in conns))
    return done / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; proc(5) stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput_rounds(
    direct: int, node: int, node_pid: int, rounds: int, seconds: float
) -> dict:
    rates: dict[str, list[float]] = {"direct": [], "node": []}
    ratios, node_cpu_ms = [], []
    for i in range(rounds):
        order = [("direct", direct), ("node", node)] if i % 2 == 0 else [
            ("node", node), ("direct", direct)]
        got = {}
        for name, port in order:
            # Warm-up: open the 64 connections (and the node's upstream connections).
            await throughput(port, 64, 0.5)
            cpu0 = cpu_seconds(node_pid)
            got[name] = await throughput(port, 64, seconds)
            if name == "node":
                node_cpu_ms.append((cpu_seconds(node_pid) - cpu0) * 1000 / (got[name] * seconds))
            rates[name].append(got[name])
        ratios.append(got["node"] / got["direct"])
    return {
        "direct_rps": statistics.median(rates["direct"]),
        "node_rps": statistics.median(rates["node"]),
        "ratio": statistics.median(ratios),
        "node_cpu_ms": statistics.median(node_cpu_ms),
    }


def start(cmd: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port, proc)
    return proc


def run_pair(chunk_delay: float, tmp: Path) -> tuple[subprocess.Popen, subprocess.Popen, int, int]:
    up_port, node_port = free_port(), free_port()
    up = start([sys.executable, "-m", "teelog.node.demo_upstream", "--port", str(up_port),
                "--chunk-delay", str(chunk_delay)], up_port)
    node = start([sys.executable, "-m", "teelog", "node", "--upstream",
                  f"http://127.0.0.1:{up_port}", "--port", str(node_port),
                  "--quote-provider", "none", "--gpu-evidence", "none", "--log-level", "warning",
                  "--journal", str(tmp / f"journal-{chunk_delay}.sqlite")], node_port)
    return up, node, up_port, node_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter rounds")
    parser.add_argument("--chunk-delay", type=float, default=0.02,
                        help="seconds between tokens for the paced run (default 0.02 = 50 tok/s)")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    rounds, seconds = (3, 3.0) if args.quick else (6, 5.0)
    print(f"node_bench: cpus={os.cpu_count()} quick={args.quick} python={sys.version.split()[0]} "
          f"load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        up, node, up_port, node_port = run_pair(0.0, tmp)
        try:
            for stream in (False, True):
                r = asyncio.run(latency(up_port, node_port, n, stream))
                kind = "stream (last byte)" if stream else "non-stream"
                print(f"latency c=1 {kind:18} direct p50 {r['direct_p50']:.3f} ms "
                      f"p99 {r['direct_p99']:.3f} | node p50 {r['node_p50']:.3f} "
                      f"p99 {r['node_p99']:.3f} | added p50 {r['added_p50']:+.3f} ms "
                      f"p99 {r['added_p99']:+.3f} ms  (n={n} each)")
            t = asyncio.run(throughput_rounds(up_port, node_port, node.pid, rounds, seconds))
            print(f"throughput c=64 streams, unpaced upstream: direct {t['direct_rps']:.0f}/s "
                  f"node {t['node_rps']:.0f}/s ratio {t['ratio']:.1%} node CPU "
                  f"{t['node_cpu_ms']:.2f} ms/stream (median of {rounds} rounds x {seconds:.0f} s)")
        finally:
            node.terminate()
            up.terminate()
            node.wait()
            up.wait()
        up, node, up_port, node_port = run_pair(args.chunk_delay, tmp)
        try:
            t = asyncio.run(throughput_rounds(up_port, node_port, node.pid, rounds, seconds))
            print(f"throughput c=64 streams, paced upstream ({1 / args.chunk_delay:.0f} tok/s, "
                  f"16 tokens): direct {t['direct_rps']:.1f}/s node {t['node_rps']:.1f}/s "
                  f"ratio {t['ratio']:.1%} node CPU {t['node_cpu_ms']:.2f} ms/stream "
                  f"(median of {rounds} rounds x {seconds:.0f} s)")
        finally:
            node.terminate()
            up.terminate()
            node.wait()
            up.wait()
    print(f"load average at end {os.getloadavg()[0]:.2f} (other processes share these CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
