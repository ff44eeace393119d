"""The sequencer's duplicate index: leaf hash -> index of every integrated entry.

Duplicate submissions of the same bytes are answered with the existing index.  A B-tree keyed
by random hashes costs about one 4 KiB page write per entry (measured: 24-40 ms per 1,000
inserts at 1M rows in SQLite), far over the sequencing budget, so the index is not a table:

* the level-0 tiles already hold every leaf hash, durably and in order; they are the index's
  storage, and the index is rebuilt from them (only what is new) whenever a process takes the
  sequencer lease;
* in memory: a set of 64-bit hash prefixes of all entries (about 70 bytes per entry) and the
  exact hashes of the most recent entries; a prefix hit on an older entry (a real duplicate,
  or a 2**-64 prefix collision) is resolved exactly by searching the level-0 tiles.
"""

from __future__ import annotations

import struct
from itertools import islice
from pathlib import Path

from .tiles import TILE_WIDTH, TileReader

RECENT = 1 << 16  # exact hashes kept for the newest entries (retries are usually recent)


def _prefix(h: bytes) -> int:
    return int.from_bytes(h[:8], "big", signed=True)


class DuplicateIndex:
    """Leaf hash lookups over a tree of ``size`` entries whose level-0 tiles are on disk."""

    def __init__(self, tiles_dir: Path) -> None:
        self.tiles_dir = tiles_dir
        self.size = 0
        self._prefixes: set[int] = set()
        self._recent: dict[bytes, int] = {}  # insertion-ordered: oldest first

    def _reader(self, size: int) -> TileReader:
        return TileReader(lambda p: (self.tiles_dir / p).read_bytes(), size, cache_tiles=4)

    def catch_up(self, size: int) -> None:
        """Add the entries ``[self.size, size)`` from the level-0 tiles of a tree of ``size``."""
        if size < self.size:  # the log never shrinks; another directory was swapped in
            self.__init__(self.tiles_dir)
        if size == self.size:
            return
        reader = self._reader(size)
        start = self.size
        for n in range(start // TILE_WIDTH, -(-size // TILE_WIDTH)):
            tile = reader.tile(0, n)
            first = max(start - n * TILE_WIDTH, 0)
            cells = tile[first * 32 :]
            self._prefixes.update(x for (x,) in struct.iter_unpack(">q24x", cells))
            base = n * TILE_WIDTH + first
            if size - (base + len(cells) // 32) < RECENT:
                for i in range(len(cells) // 32):
                    self._remember(cells[i * 32 : (i + 1) * 32], base + i)
        self.size = size

    def _remember(self, h: bytes, idx: int) -> None:
        self._recent[h] = idx
        self._trim()

    def _trim(self) -> None:
        excess = len(self._recent) - RECENT
        if excess > 0:
            for h in list(islice(self._recent, excess)):
                del self._recent[h]

    def add(self, hashes: list[bytes], first_index: int) -> None:
        """Record newly integrated leaf hashes (indexes ``first_index, first_index + 1, ...``)."""
        if first_index != self.size:
            raise ValueError(f"index is at size {self.size}, not {first_index}")
        self._prefixes.update(x for (x,) in struct.iter_unpack(">q24x", b"".join(hashes)))
        indexes = range(first_index, first_index + len(hashes))
        self._recent.update(zip(hashes, indexes, strict=True))
        self._trim()
        self.size += len(hashes)

    def find_many(self, hashes: list[bytes]) -> list[int | None]:
        """:meth:`find` for a batch; the common case (nothing known) is one set operation."""
        batch = [x for (x,) in struct.iter_unpack(">q24x", b"".join(hashes))]
        if self._prefixes.isdisjoint(batch):
            return [None] * len(hashes)
        return [self.find(h) for h in hashes]

    def find(self, h: bytes) -> int | None:
        """The index of the entry with leaf hash ``h``, or ``None``."""
        idx = self._recent.get(h)
        if idx is not None or _prefix(h) not in self._prefixes:
            return idx
        reader = self._reader(self.size)
        for n in range(-(-self.size // TILE_WIDTH)):
            tile = reader.tile(0, n)
            pos = tile.find(h)
            while pos != -1:
                if pos % 32 == 0:
                    return n * TILE_WIDTH + pos // 32
                pos = tile.find(h, pos + 1)
        return None
