"""RFC 9162 Merkle tree hashing, proof generation and proof verification.

Hashing is SHA-256 with the RFC 6962 / RFC 9162 §2.1.1 domain separation:
``leaf = SHA-256(0x00 || entry)``, ``node = SHA-256(0x01 || left || right)``, and the empty tree
hashes to ``SHA-256("")``.  Proofs are byte-identical to transparency-dev/merkle and Go's
``golang.org/x/mod/sumdb/tlog``.

Proof generation never touches leaves it does not need: a proof is first *planned* as a list of
hash ranges ``[lo, hi)`` (RFC 9162 §2.1.3.1 ``PATH`` and §2.1.4.1 ``SUBPROOF``), each range is
split into complete subtrees ``(level, index)`` (the node covering leaves
``[index * 2**level, (index + 1) * 2**level)``), and only those stored nodes are read from a
:class:`NodeSource`.  Any proof therefore costs O(log n) node reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]  # (level, index): a complete subtree of 2**level leaves


class ProofError(ValueError):
    """A proof failed verification, or a proof was requested for a tree that does not exist."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a leaf, ``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node, ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The split point k of RFC 9162 §2.1.1: the largest power of two strictly less than n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of 2**k sibling hashes at one level (a complete subtree), by pairwise folding."""
    level = list(hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over already-hashed leaves, computed from scratch (O(n))."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = largest_power_of_two_below(n)
    return node_hash(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


# --- planning: which complete subtrees a range or a proof needs ---------------------------------


def range_nodes(lo: int, hi: int) -> list[NodeId]:
    """Split the RFC 9162 subtree ``D[lo:hi]`` into complete subtrees, left to right.

    ``lo`` must be a multiple of the smallest power of two >= ``hi - lo``, which holds for every
    range produced by the RFC recursion.  MTH(D[lo:hi]) is then the right-to-left fold of the
    returned nodes: ``node(n0, node(n1, ... node(n_{k-2}, n_{k-1})))``.
    """
    if hi <= lo:
        raise ValueError(f"empty range [{lo}, {hi})")
    nodes: list[NodeId] = []
    while lo < hi:
        n = hi - lo
        size = 1 << (n.bit_length() - 1)  # largest power of two <= n
        if lo % size:
            raise ValueError(f"range [{lo}, {hi}) is not an RFC 9162 subtree")
        level = size.bit_length() - 1
        nodes.append((level, lo >> level))
        lo += size
    return nodes


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """Combine the node hashes returned for :func:`range_nodes` into the range's MTH."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]) as ranges, leaf's sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true) as ranges.

    The proof is empty when ``size1 == size2``; ``size1 == 0`` has no proof (it is consistent
    with every tree by definition) and is rejected, as upstream does.
    """
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        n = hi - lo
        k = largest_power_of_two_below(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def subtree_consistency_ranges(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Subtree consistency proof of draft-ietf-plants-merkle-tree-certs, as ranges.

    Proves that the subtree ``D[start:end]`` (``start`` a multiple of the smallest power of two
    >= ``end - start``) is part of ``D[0:size]``.  Descend from the root along the RFC split
    points, recording the far side, until the subtree is the current node (its hash is known to
    the verifier, so the proof stops) or starts it (the proof continues as RFC 9162 SUBPROOF with
    the subtree's own hash omitted).  For ``start == 0`` this is PROOF(end, D[0:size]).
    """
    if not 0 <= start <= end <= size:
        raise ProofError(f"[{start}, {end}) is not a subtree of a tree of size {size}")
    if start == end or (start == 0 and end == size):
        return []
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while not (lo == start and end <= hi):
        k = largest_power_of_two_below(hi - lo)
        if end <= lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        elif start >= lo + k:
            out.append((lo, lo + k))
            lo += k
        else:
            raise ProofError(f"[{start}, {end}) is not a valid subtree")
    out.reverse()
    if end == hi:
        return out
    inner = [(a + lo, b + lo) for a, b in consistency_ranges(end - start, hi - lo)]
    return inner + out


# --- generation over stored nodes ---------------------------------------------------------------


class NodeSource(Protocol):
    """Stored hashes of complete subtrees (tiles, an in-memory tree, a database)."""

    def nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """Return the hash of each complete subtree ``(level, index)``, in order."""
        ...


def hashes_of_ranges(source: NodeSource, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
    """MTH of each range, reading only the complete subtrees they are made of (one batch)."""
    plans = [range_nodes(lo, hi) for lo, hi in ranges]
    wanted = [node for plan in plans for node in plan]
    got = source.nodes(wanted) if wanted else []
    out: list[bytes] = []
    pos = 0
    for plan in plans:
        out.append(fold_range(got[pos : pos + len(plan)]))
        pos += len(plan)
    return out


def root(source: NodeSource, size: int) -> bytes:
    """RFC 9162 §2.1.1 MTH(D[0:size]) from stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    return hashes_of_ranges(source, [(0, size)])[0]


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof (audit path) for leaf ``index`` in tree ``size``."""
    return hashes_of_ranges(source, inclusion_ranges(index, size))


def consistency_proof(source: NodeSource, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between trees ``size1`` and ``size2``."""
    return hashes_of_ranges(source, consistency_ranges(size1, size2))


class MemoryTree:
    """A leveled in-memory tree: every complete subtree hash, per level (tests, small tools)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, entry: bytes) -> int:
        """Append an entry; return its index."""
        return self.append_hash(leaf_hash(entry))

    def append_hash(self, h: bytes) -> int:
        """Append an already-hashed leaf; return its index."""
        index = len(self.levels[0])
        self.levels[0].append(h)
        level = 0
        while len(self.levels[level]) % 2 == 0:
            row = self.levels[level]
            parent = node_hash(row[-2], row[-1])
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(parent)
            level += 1
        return index

    def nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        return [self.levels[level][index] for level, index in ids]

    def root(self, size: int | None = None) -> bytes:
        return root(self, self.size if size is None else size)


class CompactRange:
    """The hashes of the complete subtrees making up ``D[0:size]`` (the tree's right edge).

    Enough to extend the tree leaf by leaf and compute its root, as monitors that re-hash every
    entry do (Cert Spotter's collapsed tree).  ``hashes[i]`` covers ``2**levels[i]`` leaves.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        want = [lvl for lvl, _ in range_nodes(0, size)] if size else []
        if len(hashes) != len(want):
            raise ValueError(f"a compact range of size {size} has {len(want)} hashes")
        self.size = size
        self.levels = want
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash on the right."""
        level, h = 0, leaf
        while self.levels and self.levels[-1] == level:
            self.levels.pop()
            h = node_hash(self.hashes.pop(), h)
            level += 1
        self.levels.append(level)
        self.hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        return fold_range(self.hashes) if self.hashes else EMPTY_ROOT


# --- verification -------------------------------------------------------------------------------


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    while fn & 1 == 0 and fn != 0:
        fn >>= 1
        sn >>= 1
    return fn, sn


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root implied by an inclusion proof (raises on a malformed proof)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is beyond tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash has {len(leaf)} bytes, not {HASH_SIZE}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """RFC 9162 §2.1.3.2: check that ``leaf`` (a leaf *hash*) is at ``index`` in tree ``size``.

    Returns ``None`` on success; raises :class:`ProofError` saying what did not match.
    """
    got = root_from_inclusion_proof(index, size, leaf, proof)
    if got != root_hash:
        raise ProofError(
            f"inclusion proof for index {index} in tree size {size} leads to root "
            f"{got.hex()}, not {root_hash.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 §2.1.4.2: check that tree ``size2`` (``root2``) extends tree ``size1`` (``root1``).

    Upstream conventions (transparency-dev/merkle): equal sizes need an empty proof and equal
    roots; ``size1 == 0`` is rejected (callers that accept the empty tree, such as
    c2sp.org/tlog-witness ``old 0``, handle it first).  Raises :class:`ProofError`.
    """
    if size2 < size1:
        raise ProofError(f"tree size {size2} is smaller than the earlier size {size1}")
    if size1 == 0:
        raise ProofError("no consistency proof exists from the empty tree")
    if size1 == size2:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same tree size {size1}")
        return
    if not proof:
        raise ProofError(f"empty consistency proof from size {size1} to {size2}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the tree is deep")
    if fr != root1:
        raise ProofError(
            f"consistency proof gives root {fr.hex()} for size {size1}, not {root1.hex()}"
        )
    if sr != root2:
        raise ProofError(
            f"consistency proof gives root {sr.hex()} for size {size2}, not {root2.hex()}"
        )
