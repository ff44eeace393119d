"""Benchmark of the key broker end to end: decisions per second and request-to-release latency.

    .venv/bin/python bench/broker_bench.py                      # 8 clients, 3 runs of 10 s
    .venv/bin/python bench/broker_bench.py --clients 32 --seconds 20 --runs 1
    .venv/bin/python bench/broker_bench.py --dir /dev/shm   # not durable: attribution only

The real ``teelog broker --config broker.toml`` runs in its own process on loopback (uvicorn,
as deployed, access log included) over a fresh log in a temp dir, with one resource whose
policy allows sample evidence (``allow_insecure_sample``, docs/broker.md). ``--clients``
threads each speak the Trustee KBS protocol over one keep-alive HTTP connection, in a loop
for ``--seconds``:

    POST /kbs/v0/auth → POST /kbs/v0/attest (sample evidence whose report_data binds the
    nonce and the client's EC P-256 tee-pubkey) → GET /kbs/v0/resource/<path> (Bearer token)

Every ``/resource`` answer must be 200 with a ``Teelog-Entry-Index``: a release is a
``key_release`` entry appended durably and covered by a signed checkpoint before the answer,
and the evidence body is stored as a blob, so the figures include the log append. A
*decision* is one such release; decisions/s is releases over the run's wall time. Latency is
per cycle, from sending ``/auth`` to receiving the released key (``cycle``), and of the
``/resource`` request alone (``resource``). Each client decrypts its first released JWE with
its private key to check the key is the model key; after the last run the log is reopened to
check it holds every release. Before the broker starts, the run measures a serial
``Log.append`` of a 1 KB entry in a scratch log on the same disk (the per-release append cost
without concurrency), to attribute the figures. Goals (issue 11): ≥ 200 decisions/s on
2 cores, cycle P99 ≤ 1.5 s. The clients share the machine's 2 cores with the broker, as a
co-located load generator does.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from jwcrypto import jwe, jwk
from teelog.attestation.kbs_binding import expected_report_data
from teelog.broker.jwe import compact_of
from teelog.log import Log
from teelog.models import generate_key, key_id, new_manifest

RESOURCE = "bench/model-key/sample-v1"
POLICY = {
    "version": "1.0",
    "allow_insecure_sample": True,
    "anyOf": [{"allOf": [{"claim": "tee", "equals": "sample"}]}],
}


def write_broker(tmp: Path) -> tuple[Path, bytes]:
    """A fresh log, a model key (0600), its manifest, the sample policy and broker.toml."""
    key = generate_key()
    (tmp / "model.key").write_bytes(key)
    os.chmod(tmp / "model.key", 0o600)
    (tmp / "manifest.json").write_bytes(
        new_manifest("bench/sample", "v1", key_id(key), []).dumps()
    )
    (tmp / "policy.json").write_text(json.dumps(POLICY))
    Log.create(tmp / "data", origin="bench.example/broker").close()
    config = tmp / "broker.toml"
    config.write_text(
        '[broker]\nname = "broker-bench"\n[log]\ndata = "data"\n'
        f'[[resources]]\npath = "{RESOURCE}"\nkey = "model.key"\n'
        'manifest = "manifest.json"\npolicy = "policy.json"\n'
    )
    return config, key


def append_floor(tmp: Path, count: int = 50) -> float:
    """Median seconds of one serial ``Log.append`` of a ~1 KB entry (a single-entry batch:
    hash, tiles, fsync, signature, CAS commit) in a scratch log on the same disk: what one
    release's log append costs here with no concurrency, for attribution."""
    log = Log.create(tmp / "floor", origin="bench.example/floor")
    try:
        times = []
        for _ in range(count):
            t = time.perf_counter()
            log.append(os.urandom(1000))
            times.append(time.perf_counter() - t)
    finally:
        log.close()
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(config: Path, port: int, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "teelog", "broker", "--config", str(config),
             "--port", str(port)],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"teelog broker exited {proc.returncode}:\n{out.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("teelog broker did not start listening within 30 s")


@dataclass
class ClientResult:
    cycles: list[float] = field(default_factory=list)
    resources: list[float] = field(default_factory=list)
    checked_key: bool = False
    error: str | None = None


def client_loop(base: str, until: float, model_key: bytes, result: ClientResult) -> None:
    private = jwk.JWK.generate(kty="EC", crv="P-256")
    public = {**json.loads(private.export_public()), "alg": "ECDH-ES+A256KW"}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < until:
                t0 = time.perf_counter()
                r = client.post("/kbs/v0/auth", json={"version": "0.4.0", "tee": "sample",
                                                      "extra-params": ""})
                r.raise_for_status()
                nonce = r.json()["nonce"]
                rd = expected_report_data(nonce, public, "")
                body = {
                    "runtime-data": {"nonce": nonce, "tee-pubkey": public},
                    "tee-evidence": {
                        "primary_evidence": {"svn": "1",
                                             "report_data": base64.b64encode(rd).decode()},
                        "additional_evidence": "",
                    },
                }
                r = client.post("/kbs/v0/attest", content=json.dumps(body))
                r.raise_for_status()
                token = r.json()["token"]
                t1 = time.perf_counter()
                r = client.get(f"/kbs/v0/resource/{RESOURCE}",
                               headers={"Authorization": f"Bearer {token}"})
                t2 = time.perf_counter()
                if r.status_code != 200 or "Teelog-Entry-Index" not in r.headers:
                    raise RuntimeError(f"/resource answered {r.status_code}: {r.text[:200]}")
                if not result.checked_key:
                    out = jwe.JWE()
                    out.deserialize(compact_of(r.json()), key=private)
                    if out.payload != model_key:
                        raise RuntimeError("the released JWE does not hold the model key")
                    result.checked_key = True
                result.cycles.append(t2 - t0)
                result.resources.append(t2 - t1)
    except Exception as exc:  # reported by the run: a bench that hides failures measures nothing
        result.error = f"{type(exc).__name__}: {exc}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def one_run(base: str, clients: int, seconds: float, model_key: bytes) -> dict[str, float]:
    results = [ClientResult() for _ in range(clients)]
    start = time.monotonic()
    until = start + seconds
    threads = [threading.Thread(target=client_loop, args=(base, until, model_key, r))
               for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    errors = [r.error for r in results if r.error]
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed; first: {errors[0]}")
    cycles = [c for r in results for c in r.cycles]
    resources = [c for r in results for c in r.resources]
    return {
        "releases": len(cycles),
        "per_s": len(cycles) / wall,
        "cycle_p50": pct(cycles, 50), "cycle_p99": pct(cycles, 99),
        "resource_p50": pct(resources, 50), "resource_p99": pct(resources, 99),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8, help="concurrent KBS clients (8)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of one run (10)")
    ap.add_argument("--runs", type=int, default=3, help="runs; medians are reported (3)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the temp log goes (default: the system temp dir); a tmpfs "
                    "such as /dev/shm is not durable and serves attribution only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="broker-bench-", dir=args.dir) as d:
        tmp = Path(d)
        config, model_key = write_broker(tmp)
        floor = append_floor(tmp)
        print(f"serial Log.append of 1 KB: P50 {floor * 1e3:.1f} ms "
              f"(≤ {1 / floor:.0f} single-entry appends/s)", flush=True)
        port = free_port()
        proc = start_broker(config, port, tmp / "broker.out")
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            for i in range(args.runs):
                row = one_run(base, args.clients, args.seconds, model_key)
                rows.append(row)
                print(f"run {i + 1}: {row['releases']} releases, {row['per_s']:.0f} decisions/s; "
                      f"cycle P50/P99 {row['cycle_p50'] * 1e3:.0f} / "
                      f"{row['cycle_p99'] * 1e3:.0f} ms; resource P50/P99 "
                      f"{row['resource_p50'] * 1e3:.0f} / {row['resource_p99'] * 1e3:.0f} ms",
                      flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        log = Log.open(tmp / "data")
        try:
            size = log.size
        finally:
            log.close()
        total = sum(int(r["releases"]) for r in rows)
        if size < total:
            raise SystemExit(f"the log holds {size} entries, fewer than the {total} releases")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"median of {args.runs} run(s), {args.clients} clients, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}: {med['per_s']:.0f} decisions/s (goal ≥ 200); "
          f"cycle P50/P99 {med['cycle_p50'] * 1e3:.0f} / {med['cycle_p99'] * 1e3:.0f} ms "
          f"(goal P99 ≤ 1500); resource P50/P99 {med['resource_p50'] * 1e3:.0f} / "
          f"{med['resource_p99'] * 1e3:.0f} ms; log size {size} ≥ {total} releases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
