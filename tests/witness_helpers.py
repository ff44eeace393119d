"""Test helpers: an in-memory C2SP log (``FakeLog``) and ``teelog witness serve`` processes."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from teelog.log.checkpoint import Checkpoint
from teelog.log.merkle import MemoryTree, consistency_proof
from teelog.log.note import Ed25519Signer


class FakeLog:
    """A log in memory: a Merkle tree and its Ed25519 key; ``tag`` gives another history."""

    def __init__(self, signer: Ed25519Signer, tag: bytes = b"") -> None:
        self.signer = signer
        self.tree = MemoryTree()
        self.tag = tag

    def grow(self, n: int) -> None:
        for _ in range(n):
            self.tree.append(b"entry %d%s" % (self.tree.size, self.tag))

    def note(self, size: int | None = None) -> str:
        size = self.tree.size if size is None else size
        return Checkpoint(self.signer.name, size, self.tree.root(size)).sign(self.signer).note

    def body(self, old: int, size: int | None = None) -> bytes:
        size = self.tree.size if size is None else size
        proof = consistency_proof(self.tree, old, size) if 0 < old < size else []
        lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
        return ("\n".join(lines) + "\n\n" + self.note(size)).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_witness(data: Path, name: str) -> str:
    """``teelog witness init``; return the printed vkey."""
    out = subprocess.run(
        [sys.executable, "-m", "teelog", "witness", "init", "--data", str(data), "--name", name],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def write_config(path: Path, logs: dict[str, str]) -> Path:
    path.write_text("".join(
        f'[[logs]]\norigin = "{origin}"\nvkey = "{vkey}"\n' for origin, vkey in logs.items()))
    return path


def serve_witness(data: Path, config: Path, port: int) -> subprocess.Popen:
    """Start ``teelog witness serve`` and wait until it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "teelog", "witness", "serve", "--data", str(data),
         "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/{'0' * 64}/checkpoint", timeout=2)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()) from None
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("witness did not start") from None
            time.sleep(0.05)
