"""Content-addressed evidence store: ``blobs/ab/cdef…`` named by the SHA-256 of the bytes.

Entries are capped at 65,535 bytes (tlog-tiles bundles), so large evidence (raw reports,
collateral) lives here and the entry commits to it by digest.  Blobs are immutable, written
atomically and fsynced before :meth:`BlobStore.put` returns, and checked against their name on
every read.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .fsio import write_durable

_HEX64 = re.compile(r"[0-9a-f]{64}")


class BlobError(ValueError):
    """A blob name is malformed, a blob is missing, or its bytes do not match its name."""


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise :class:`BlobError`."""
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise BlobError(f"{digest!r} is not a lowercase hex SHA-256 digest")
    return digest


class BlobStore:
    """A directory of blobs named by SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Where blob ``digest`` lives (whether or not it exists)."""
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        """Store ``data`` durably; return its SHA-256 hex digest (idempotent)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            write_durable(path, data, mode=0o444)
        return digest

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def get(self, digest: str) -> bytes:
        """Return the blob's bytes, checking them against ``digest``."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobError(f"no blob {digest}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobError(f"blob {digest} is corrupted: its bytes hash to something else")
        return data
