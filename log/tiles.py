"""C2SP tlog-tiles (c2sp.org/tlog-tiles): paths, hash tiles, entry bundles, builders, reader.

A tile at level ``L`` and index ``N`` holds up to 256 consecutive hashes: cell ``i`` is
``MTH(D[(N*256+i) * 256**L : (N*256+i+1) * 256**L])``.  Level-0 tiles hold leaf hashes.  The
rightmost tile of each level is partial, served at ``.p/<W>`` with
``W = floor(size / 256**L) mod 256``.  Entry bundles hold the entries of one level-0 tile, each
prefixed by its length as a big-endian uint16 (so an entry is at most 65,535 bytes).

Tree levels between tile levels are recomputed by hashing tile cells, so any complete subtree
``(level, index)`` of the tree is available from one tile (:class:`TileNodes`).
"""

from __future__ import annotations

import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from . import merkle
from .merkle import HASH_SIZE, NodeId, leaf_hash, subtree_root

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_ENTRY_SIZE = 0xFFFF
MAX_TILE_LEVEL = 63


class TileError(ValueError):
    """A tile path, tile or entry bundle is malformed or missing."""


class EntryTooLarge(ValueError):
    """An entry does not fit a tlog-tiles entry bundle (more than 65,535 bytes)."""


# --- paths --------------------------------------------------------------------------------------


def encode_index(n: int) -> str:
    """tlog-tiles ``<N>``: zero-padded 3-digit path elements, all but the last prefixed ``x``."""
    if n < 0:
        raise ValueError(f"tile index {n} is negative")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int, n: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for a hash tile."""
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_index(n)}{suffix}"


def bundle_path(n: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` for an entry bundle."""
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/entries/{encode_index(n)}{suffix}"


@dataclass(frozen=True)
class TileAddress:
    """A parsed tile path: ``level`` is ``None`` for entry bundles; ``width`` 256 when full."""

    level: int | None
    n: int
    width: int

    @property
    def path(self) -> str:
        if self.level is None:
            return bundle_path(self.n, self.width)
        return tile_path(self.level, self.n, self.width)


_LEVEL = r"(?P<level>0|[1-9][0-9]?|entries)"
_INDEX = r"(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
_WIDTH = r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
_TILE_RE = re.compile(rf"tile/{_LEVEL}/{_INDEX}{_WIDTH}")


def parse_tile_path(path: str) -> TileAddress:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` strictly.

    Rejects levels above 63 or with leading zeros, index groups that are not ``x``-prefixed
    3-digit groups, redundant leading ``x000`` groups, and widths outside 1..255.
    """
    m = _TILE_RE.fullmatch(path)
    if m is None:
        raise TileError(f"{path!r} is not a tlog-tiles path")
    level = None if m["level"] == "entries" else int(m["level"])
    if level is not None and level > MAX_TILE_LEVEL:
        raise TileError(f"tile level {level} is above {MAX_TILE_LEVEL}")
    groups = m["index"].split("/")
    if len(groups) > 1 and groups[0] == "x000":
        raise TileError(f"tile index {m['index']!r} has a redundant leading group")
    n = int("".join(g.lstrip("x") for g in groups))
    width = TILE_WIDTH if m["width"] is None else int(m["width"])
    if m["width"] is not None and width >= TILE_WIDTH:
        raise TileError(f"partial tile width {width} is not between 1 and 255")
    return TileAddress(level, n, width)


def partial_width(size: int, level: int) -> int:
    """Width of the partial tile at ``level`` for a tree of ``size`` (0: no partial tile)."""
    return (size >> (TILE_HEIGHT * level)) % TILE_WIDTH


def tile_width(size: int, level: int, n: int) -> int:
    """How many cells tile ``(level, n)`` has in a tree of ``size`` (0 if it does not exist)."""
    cells = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, cells - n * TILE_WIDTH))


# --- entry bundles ------------------------------------------------------------------------------


def check_entry(entry: bytes) -> None:
    """Raise :class:`EntryTooLarge` if ``entry`` cannot be stored in a bundle."""
    if len(entry) > MAX_ENTRY_SIZE:
        raise EntryTooLarge(
            f"entry is {len(entry)} bytes; tlog-tiles entries are at most {MAX_ENTRY_SIZE} "
            "bytes (store large evidence in the blob store and log its SHA-256)"
        )


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """Concatenate entries, each prefixed by its big-endian uint16 length."""
    parts = []
    for e in entries:
        n = len(e)
        if n > MAX_ENTRY_SIZE:
            check_entry(e)
        parts.append(n.to_bytes(2, "big"))
        parts.append(e)
    return b"".join(parts)


def decode_bundle(data: bytes) -> list[bytes]:
    """Split an entry bundle; raise :class:`TileError` if it is truncated."""
    out: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end:
            raise TileError(f"entry bundle truncated in a length prefix at byte {pos}")
        (n,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + n > end:
            raise TileError(f"entry bundle truncated: entry of {n} bytes at byte {pos - 2}")
        out.append(data[pos : pos + n])
        pos += n
    if len(out) > TILE_WIDTH:
        raise TileError(f"entry bundle has {len(out)} entries, more than {TILE_WIDTH}")
    return out


def split_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


# --- nodes from tiles ---------------------------------------------------------------------------


TileFetcher = Callable[[int, int, int], bytes]  # (level, n, width) -> at least width hashes


class TileNodes:
    """A :class:`merkle.NodeSource` for a tree of ``size``, reading cells from hash tiles.

    Node ``(8T + r, i)`` is the MTH of ``2**r`` consecutive cells of a level-``T`` tile.
    """

    def __init__(self, fetch: TileFetcher, size: int) -> None:
        self.fetch = fetch
        self.size = size

    def nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        tiles: dict[tuple[int, int], bytes] = {}
        out = []
        for level, index in ids:
            if (index + 1) << level > self.size:
                raise merkle.ProofError(f"node ({level}, {index}) is not in tree size {self.size}")
            t, r = divmod(level, TILE_HEIGHT)
            first = index << r
            n, off = divmod(first, TILE_WIDTH)
            tile = tiles.get((t, n))
            if tile is None:
                tile = tiles[(t, n)] = self.fetch(t, n, tile_width(self.size, t, n))
            cells = tile[off * HASH_SIZE : (off + (1 << r)) * HASH_SIZE]
            out.append(cells if r == 0 else subtree_root(split_hashes(cells)))
        return out


class TileCache:
    """A thread-safe LRU of tile resources by path.

    Safe because every resource a reader asks for is immutable: its path names a checkpointed
    width (or a full tile), whose content never changes.
    """

    def __init__(self, max_items: int) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def get(self, path: str, load: Callable[[str], bytes]) -> bytes:
        with self._lock:
            data = self._items.get(path)
            if data is not None:
                self._items.move_to_end(path)
                return data
        data = load(path)
        if self._max > 0:
            with self._lock:
                self._items[path] = data
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
        return data


class TileReader:
    """Computes roots, proofs and entries of a tree of ``size`` from tiles alone.

    ``fetch(path)`` returns a resource's bytes or raises ``FileNotFoundError`` / ``KeyError``
    (local files, HTTP).  Partial tiles fall back to the full tile when they have been deleted, as
    tlog-tiles allows.  Resources are kept in an LRU cache (``cache``, shareable between readers
    and threads, or a private one of ``cache_tiles`` entries).
    """

    def __init__(
        self,
        fetch: Callable[[str], bytes],
        size: int,
        cache_tiles: int = 64,
        cache: TileCache | None = None,
    ) -> None:
        self.fetch = fetch
        self.size = size
        self._cache = cache if cache is not None else TileCache(cache_tiles)

    def _get(self, path: str) -> bytes:
        return self._cache.get(path, self.fetch)

    def _resource(
        self, path_for: Callable[[int], str], width: int, what: str
    ) -> tuple[str, int, bytes]:
        """``(path, width, bytes)`` of the resource at ``width``, or of the full one."""
        if width <= 0:
            raise TileError(f"{what} is beyond tree size {self.size}")
        try:
            return path_for(width), width, self._get(path_for(width))
        except (FileNotFoundError, KeyError):
            if width == TILE_WIDTH:
                raise TileError(f"{path_for(width)} is missing") from None
        try:
            return path_for(TILE_WIDTH), TILE_WIDTH, self._get(path_for(TILE_WIDTH))
        except (FileNotFoundError, KeyError):
            raise TileError(f"neither {path_for(width)} nor the full tile exists") from None

    def tile(self, level: int, n: int, width: int | None = None) -> bytes:
        """The hash tile ``(level, n)`` at its width for this tree size, length-checked."""
        w = tile_width(self.size, level, n) if width is None else width
        path, got_w, data = self._resource(lambda x: tile_path(level, n, x), w, f"tile {level}/{n}")
        if len(data) != got_w * HASH_SIZE:
            raise TileError(f"{path} has {len(data)} bytes, not {got_w * HASH_SIZE}")
        return data[: w * HASH_SIZE]

    def bundle(self, n: int) -> list[bytes]:
        """The entries of bundle ``n`` at its width for this tree size."""
        w = tile_width(self.size, 0, n)
        path, got_w, data = self._resource(lambda x: bundle_path(n, x), w, f"bundle {n}")
        entries = decode_bundle(data)
        if len(entries) != got_w:
            raise TileError(f"{path} has {len(entries)} entries, not {got_w}")
        return entries[:w]

    @property
    def nodes(self) -> TileNodes:
        return TileNodes(self.tile, self.size)

    def root(self) -> bytes:
        return merkle.root(self.nodes, self.size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return merkle.inclusion_proof(self.nodes, index, self.size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return merkle.consistency_proof(self.nodes, size1, self.size if size2 is None else size2)

    def entry(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise TileError(f"entry {index} is beyond tree size {self.size}")
        n, off = divmod(index, TILE_WIDTH)
        return self.bundle(n)[off]


# --- builders (the sequencer's right edge) ------------------------------------------------------


@dataclass(frozen=True)
class TileWrite:
    """A tile or bundle to write: its path and bytes."""

    path: str
    data: bytes
    full: bool


class TileBuilder:
    """The right edge of the tree: the partial tile of every level, extended batch by batch.

    It is also a :class:`merkle.NodeSource` for the nodes of the root's decomposition, all of
    which lie in the partial tiles.
    """

    def __init__(self, size: int = 0, partials: dict[int, list[bytes]] | None = None) -> None:
        self.size = size
        self.partials: list[list[bytes]] = []
        partials = partials or {}
        level = 0
        while size >> (TILE_HEIGHT * level):
            want = partial_width(size, level)
            got = partials.get(level, [])
            if len(got) != want:
                raise TileError(f"level {level} partial tile has {len(got)} hashes, not {want}")
            self.partials.append(list(got))
            level += 1

    def append(self, hashes: Sequence[bytes]) -> list[TileWrite]:
        """Add leaf hashes; return every tile that changed (full tiles, then new partials)."""
        writes: list[TileWrite] = []
        new = list(hashes)
        level = 0
        while new:
            if level == len(self.partials):
                self.partials.append([])
            part = self.partials[level]
            cells = (self.size >> (TILE_HEIGHT * level)) - len(part)  # cells before the partial
            up: list[bytes] = []
            for h in new:
                part.append(h)
                if len(part) == TILE_WIDTH:
                    writes.append(
                        TileWrite(tile_path(level, cells >> TILE_HEIGHT), b"".join(part), True)
                    )
                    up.append(subtree_root(part))
                    cells += TILE_WIDTH
                    part.clear()
            if part:
                n = cells >> TILE_HEIGHT
                writes.append(TileWrite(tile_path(level, n, len(part)), b"".join(part), False))
            new = up
            level += 1
        self.size += len(hashes)
        return writes

    def nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        out = []
        for level, index in ids:
            t, r = divmod(level, TILE_HEIGHT)
            part = self.partials[t]
            base = (self.size >> (TILE_HEIGHT * t)) - len(part)  # first cell of the partial
            off = (index << r) - base
            if off < 0 or off + (1 << r) > len(part):
                raise merkle.ProofError(f"node ({level}, {index}) is not on the right edge")
            out.append(part[off] if r == 0 else subtree_root(part[off : off + (1 << r)]))
        return out

    def root(self) -> bytes:
        return merkle.root(self, self.size)


class BundleBuilder:
    """The partial entry bundle at the right edge, extended batch by batch."""

    def __init__(self, size: int = 0, partial: Sequence[bytes] = ()) -> None:
        if len(partial) != size % TILE_WIDTH:
            raise TileError(f"partial bundle has {len(partial)} entries, not {size % TILE_WIDTH}")
        self.size = size
        self.partial = list(partial)

    def append(self, entries: Sequence[bytes]) -> list[TileWrite]:
        writes: list[TileWrite] = []
        n = self.size >> TILE_HEIGHT
        for e in entries:
            self.partial.append(e)
            if len(self.partial) == TILE_WIDTH:
                writes.append(TileWrite(bundle_path(n), encode_bundle(self.partial), True))
                self.partial.clear()
                n += 1
        if self.partial and entries:
            writes.append(
                TileWrite(bundle_path(n, len(self.partial)), encode_bundle(self.partial), False)
            )
        self.size += len(entries)
        return writes


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    return [leaf_hash(e) for e in entries]
