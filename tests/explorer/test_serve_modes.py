"""`teelog serve` runs gunicorn with --workers N by default and Werkzeug with --dev."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from teelog.log import Log

ORIGIN = "teelog.test/serve-modes"


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc, Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def data(tmp_path):
    log = Log.create(tmp_path / "data", ORIGIN)
    log.append_many([b"entry %d" % i for i in range(10)])
    log.close()
    return tmp_path / "data"


def _start(data: Path, *extra: str) -> tuple[subprocess.Popen, int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "teelog", "serve", "--data", str(data), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=(data / "serve.err").open("w"),
        text=True,
        env={**os.environ, "TEELOG_STALE_AFTER": "3600"},
    )
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert m, f"unexpected first line {line!r}; stderr: {(data / 'serve.err').read_text()}"
    return proc, int(m.group(1)), line


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_serve_runs_gunicorn_with_the_asked_number_of_workers(data):
    proc, port, line = _start(data, "--workers", "3")
    try:
        assert "gunicorn, 3 workers" in line
        # Every request below is answered by a worker, so all have booted once they succeed.
        for _ in range(6):
            status, body = _get(port, "/log/checkpoint")
            assert status == 200 and body.startswith(ORIGIN.encode() + b"\n10\n")
        assert len(_children(proc.pid)) == 3
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_serve_dev_keeps_the_werkzeug_server_in_one_process(data):
    proc, port, line = _start(data, "--dev")
    try:
        assert "dev server" in line
        status, _ = _get(port, "/healthz")
        assert status == 200
        assert _children(proc.pid) == []
    finally:
        _stop(proc)


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_serve_refuses_a_worker_count_that_is_not_positive(data, workers):
    proc = subprocess.run(
        [sys.executable, "-m", "teelog", "serve", "--data", str(data), "--workers", workers],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--workers" in proc.stderr
