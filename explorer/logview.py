"""What the explorer shows about the log itself: checkpoint, its age, proofs in wire encodings.

Encodings match the C2SP formats and ``docs/explorer-browser.md``: hashes are standard base64
(with padding), the checkpoint is the signed note's full text, the vkey is the signed-note
verifier key. A C2SP checkpoint carries no timestamp, so its age is the time since the log
wrote it: the modification time of ``<tiles>/checkpoint`` (the log rewrites that file on every
signing, even when the tree did not grow).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teelog.log import TileReader


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """The latest signed checkpoint, as the pages and API show it."""

    origin: str
    size: int
    root_b64: str
    note: str
    signed_at: float | None  # Unix time the log wrote it, if known

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the checkpoint was written, or None when unknown."""
        if self.signed_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.signed_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": self.root_b64,
            "note": self.note,
            "age_seconds": None if self.age() is None else round(self.age() or 0.0, 3),
        }


def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def checkpoint_info(log: Any) -> CheckpointInfo:
    """The log's latest checkpoint and the time it was written."""
    cp = log.checkpoint()
    signed_at: float | None = None
    tiles = getattr(log, "tiles_dir", None)
    if tiles is not None:
        try:
            signed_at = (Path(tiles) / "checkpoint").stat().st_mtime
        except OSError:
            signed_at = None
    return CheckpointInfo(
        origin=cp.origin,
        size=int(cp.size),
        root_b64=b64(cp.root),
        note=cp.note,
        signed_at=signed_at,
    )


class TreeView:
    """Reads of one signed tree, at exactly its checkpoint's size, for one request.

    Entries and inclusion proofs come from the published tiles (``log.tiles_dir``, C2SP
    tlog-tiles) through a reader of this request's own, bound to the checkpoint's size: a proof
    always matches the checkpoint shown beside it, even while the log grows, and concurrent
    requests share no reader state.
    """

    def __init__(self, log: Any, cp: CheckpointInfo) -> None:
        self.cp = cp
        tiles = Path(log.tiles_dir)
        self._reader = TileReader(lambda path: (tiles / path).read_bytes(), cp.size, cache_tiles=8)

    def entry(self, index: int) -> bytes:
        """The bytes of entry ``index`` (``index < size``)."""
        return self._reader.entry(index)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 inclusion proof of ``index`` in this tree."""
        return self._reader.inclusion_proof(index, self.cp.size)

    def inclusion_proof_b64(self, index: int) -> list[str]:
        return [b64(h) for h in self.inclusion_proof(index)]


def consistency_proof_b64(log: Any, size1: int, size2: int) -> list[str]:
    """RFC 9162 §2.1.4.1 consistency proof from ``size1`` to ``size2``, base64 hashes."""
    return [b64(h) for h in log.consistency_proof(size1, size2)]
