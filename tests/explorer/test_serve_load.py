"""`teelog serve` on loopback: it starts, serves, and holds a bounded load with zero errors."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from itertools import cycle
from urllib.parse import quote

import pytest
from explorer_fixtures import NODE, build_log


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """`teelog serve --data DIR --port 0` in its own process over the real-data log."""
    data = tmp_path_factory.mktemp("served")
    built = build_log(data, receipts=20)
    built.log.close()
    env = {**os.environ, "TEELOG_STALE_AFTER": "3600"}
    # The access log goes to a file: a pipe nobody reads would fill up and stall the server.
    errors = data / "serve.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "teelog", "serve", "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/ \((\d+) entries indexed\)", line)
        assert m, f"unexpected first line {line!r}; stderr: {errors.read_text()[:2000]}"
        yield int(m.group(1)), built
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_serve_prints_its_url_and_answers(served):
    port, built = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, body = _get(conn, "/healthz")
    assert status == 200, body
    status, body = _get(conn, "/log/checkpoint")
    assert status == 200 and body.decode().startswith("explorer.test/teelog\n")
    status, body = _get(conn, f"/entries/{built.attestation_indexes[0]}")
    assert status == 200 and b'id="verify-data"' in body


def test_serve_without_a_data_directory_fails_clearly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TEELOG_DATA"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # the default data directory: no log there
    proc = subprocess.run(
        [sys.executable, "-m", "teelog", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"{tmp_path / 'xdg' / 'teelog'} holds no log" in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "teelog", "serve", "--data", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "holds no log" in missing.stderr


@pytest.mark.slow
def test_mixed_load_of_200_requests_per_second_for_30_seconds_has_no_errors(served):
    port, built = served
    receipt = built.receipts[0]
    m = built.verdict["attestations"][1]["measurements"]
    paths = [
        "/",
        "/api/v1/nodes",
        f"/api/v1/receipts?signature={receipt['signatures']['ecdsa']['signature']}",
        f"/entries/{built.attestation_indexes[0]}",
        f"/api/v1/search?q={m['compose_hash']}",
        f"/nodes/{quote(NODE)}",
        f"/entries/{built.receipt_indexes[3]}",
        f"/api/v1/entries/{built.receipt_indexes[5]}/proof",
        f"/api/v1/receipts?chat_id={receipt['chat_id']}",
        "/log/checkpoint",
        f"/search?q={receipt['response_sha256']}",
        "/api/v1/entries?limit=50",
        "/metrics",
        "/feeds/changes.atom",
    ]
    rate, seconds, workers = 200, 30.0, 16
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    counter = iter(range(total))
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    late = [0.0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mix = cycle(paths)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late[0] = max(late[0], -delay)
            path = next(mix)
            try:
                status, _ = _get(conn, path)
                key = "ok" if status == 200 else f"{status} {path}"
            except (OSError, http.client.HTTPException) as exc:
                key = f"{type(exc).__name__} {path}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                outcomes[key] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert outcomes == Counter({"ok": total}), outcomes.most_common(5)
    # The offered load really was ~200/s (the schedule is open-loop: a slow server shows as
    # a longer run, which is reported rather than hidden).
    assert elapsed < seconds * 3, f"{total} requests took {elapsed:.1f} s (max lag {late[0]:.1f} s)"
