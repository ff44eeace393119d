"""The audit core: checking a served log from its static files (``teelog log verify`` and the
monitor, ``teelog.monitor``, both run it).

Given the log's vkey and the state saved by the previous run, a served log is audited by:

1. the checkpoint's signature and origin (c2sp.org/tlog-checkpoint, signed-note):
   :func:`teelog.log.checkpoint.open_checkpoint`;
2. :func:`check_checkpoint`: a checkpoint for a smaller tree than the verified one is a
   rollback, another root for the same size a fork;
3. :func:`extend`: every new entry hashes (RFC 9162 §2.1.1 leaf hash) to its level-0 tile cell,
   and re-hashing all entries from the saved right edge (a compact range) gives the checkpoint
   root, as Cert Spotter does. Since the old tree is a prefix of the recomputed one, this proves
   RFC 9162 §2.1.4 consistency with the verified checkpoint;
4. when the recomputed root is not the checkpoint's, :func:`diagnose` tells a fork from entry
   bundles or hash tiles that are not the tree's, with a consistency proof built from tiles.

:func:`audit` runs all of it once and also recomputes the root from the hash tiles and checks
the tiles' consistency proof. The state (:class:`AuditState`, one JSON file) keeps the last
verified checkpoint and the right edge of the tree, so the next run only reads what is new;
the monitor keeps its own fields in the same file (``extra``), so either program can follow a
log from the other's state.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint, CheckpointError, open_checkpoint
from .fsio import write_durable
from .merkle import EMPTY_ROOT, CompactRange, ProofError, leaf_hash, verify_consistency
from .note import Ed25519Verifier
from .tiles import TILE_WIDTH, TileError, TileReader, split_hashes

# What an inconsistency is (the ``kind`` of :class:`AuditError` and of the monitor's
# ``log.inconsistent`` alert, docs/monitor.md).
ROLLBACK = "rollback"  # a checkpoint for a smaller tree than the verified one
FORK = "fork"  # a tree that does not extend the verified one
BAD_ENTRIES = "bad-entries"  # entry bundles that are not the signed tree's entries
BAD_TILES = "bad-tiles"  # neither bundles nor hash tiles make the signed root
FORK_OR_BAD_ENTRIES = "fork-or-bad-entries"  # no consistency proof could be read to tell
INCONSISTENCIES = (ROLLBACK, FORK, BAD_ENTRIES, BAD_TILES, FORK_OR_BAD_ENTRIES)


class AuditError(RuntimeError):
    """The served log failed a check; the message says which and why.

    ``kind`` is one of :data:`INCONSISTENCIES` when the log contradicts the verified state,
    ``checkpoint`` for a checkpoint that does not verify, ``state`` for an unusable state, and
    ``unreadable`` when the served files are incomplete (nothing was proven either way).
    """

    def __init__(self, message: str, kind: str = "unreadable") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class AuditState:
    """What the previous run verified: the checkpoint note and the tree's right edge.

    ``extra`` holds the other fields of the state file (the monitor's), kept as they are.
    """

    origin: str
    size: int
    root: bytes
    checkpoint: str
    right_edge: list[bytes] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, origin: str) -> AuditState:
        """The state before anything was verified: the empty tree (RFC 9162 §2.1.1)."""
        return cls(origin, 0, EMPTY_ROOT, "")

    def edge(self) -> CompactRange:
        """The compact range of the verified tree, checked against the saved root."""
        try:
            edge = CompactRange(self.size, self.right_edge)
        except ValueError as e:
            raise AuditError(f"state right edge: {e}", "state") from e
        if edge.root() != self.root:
            raise AuditError(
                "the state's right edge (compact range) does not make the saved root "
                "(state corrupted)",
                "state",
            )
        return edge

    def to_obj(self) -> dict[str, Any]:
        return {
            **self.extra,
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "checkpoint": self.checkpoint,
            "right_edge": [base64.b64encode(h).decode() for h in self.right_edge],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_obj(), indent=2, sort_keys=True)

    @classmethod
    def from_obj(cls, raw: Any) -> AuditState:
        """The state in a parsed state file; :class:`AuditError` (``state``) if malformed."""
        try:
            own = ("origin", "size", "root", "checkpoint", "right_edge")
            return cls(
                str(raw["origin"]),
                int(raw["size"]),
                base64.b64decode(raw["root"], validate=True),
                str(raw["checkpoint"]),
                [base64.b64decode(h, validate=True) for h in raw["right_edge"]],
                {k: v for k, v in raw.items() if k not in own},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise AuditError(f"malformed state: {e!r}", "state") from e

    @classmethod
    def load(cls, path: Path) -> AuditState | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError) as e:
            raise AuditError(f"state file {path} is not valid JSON: {e}", "state") from e
        try:
            return cls.from_obj(raw)
        except AuditError as e:
            raise AuditError(f"state file {path} is malformed: {e}", "state") from e

    def save(self, path: Path) -> None:
        write_durable(path, self.to_json().encode())


def check_checkpoint(state: AuditState, cp: Checkpoint) -> None:
    """Raise :class:`AuditError` if ``cp`` (signature already verified) contradicts ``state``
    without reading any entry: another origin, a smaller tree, or another root for its size."""
    if state.origin != cp.origin:
        raise AuditError(f"the state is for {state.origin!r}, the log is {cp.origin!r}", "state")
    if cp.size < state.size:
        raise AuditError(
            f"the log's tree shrank from {state.size} to {cp.size} entries", ROLLBACK
        )
    if cp.size == state.size and cp.root != state.root:
        raise AuditError(f"two different roots for tree size {cp.size}", FORK)


def tree_entries(reader: TileReader, start: int) -> Iterator[tuple[int, bytes, bytes]]:
    """Entries ``start`` .. ``reader.size - 1`` in order, bundle by bundle (C2SP tlog-tiles),
    each with its level-0 tile cell (the leaf hash the tree holds for it). Raises
    :class:`TileError` for a bundle or tile that cannot be read."""
    for n in range(start // TILE_WIDTH, -(-reader.size // TILE_WIDTH)):
        entries = reader.bundle(n)
        cells = split_hashes(reader.tile(0, n))
        for offset in range(max(start - n * TILE_WIDTH, 0), len(entries)):
            yield n * TILE_WIDTH + offset, entries[offset], cells[offset]


def extend(
    state: AuditState,
    cp: Checkpoint,
    entries: Iterable[tuple[int, bytes, bytes]],
    reader: Callable[[], TileReader],
    inspect: Callable[[int, bytes], None] | None = None,
) -> AuditState:
    """The state after ``cp``, from the entries after ``state.size`` (as :func:`tree_entries`
    gives them; ``inspect`` sees each in order), or :class:`AuditError`.

    An entry that does not hash to its tile cell is ``bad-entries``; a recomputed root that is
    not the checkpoint's is diagnosed from ``reader()``'s tiles (:func:`diagnose`). Entries
    missing or out of order are ``unreadable``.
    """
    edge = state.edge()
    size = state.size
    for index, entry, cell in entries:
        if index != size:
            raise AuditError(f"entry {index} was read where entry {size} was expected")
        leaf = leaf_hash(entry)
        if leaf != cell:
            raise AuditError(
                f"entry {index} of the bundles does not hash to its level-0 tile cell",
                BAD_ENTRIES,
            )
        edge.append(leaf)
        size += 1
        if inspect is not None:
            inspect(index, entry)
    if size != cp.size:
        raise AuditError(f"read {size - state.size} entries, the checkpoint has {cp.size}")
    if edge.root() != cp.root:
        raise diagnose(state, cp, reader)
    return AuditState(cp.origin, cp.size, cp.root, cp.note, list(edge.hashes), dict(state.extra))


def diagnose(state: AuditState, cp: Checkpoint, reader: Callable[[], TileReader]) -> AuditError:
    """Why the entries after ``state`` do not make ``cp``'s root: a fork (the new tree does not
    extend the verified one) or entry bundles that are not the tree's, told apart with an
    RFC 9162 §2.1.4 consistency proof from the hash tiles."""
    if state.size == 0:
        return AuditError("the entry bundles do not hash to the checkpoint's root", BAD_ENTRIES)
    try:
        tiles = reader()
        if tiles.root() != cp.root:
            return AuditError(
                f"neither the entry bundles nor the hash tiles served for size {cp.size} "
                "make the checkpoint's root",
                BAD_TILES,
            )
        proof = tiles.consistency_proof(state.size)
    except (TileError, ProofError, OSError) as exc:
        return AuditError(
            f"the entries after {state.size} do not hash to the checkpoint's root, and "
            f"no consistency proof could be read from the tiles ({exc})",
            FORK_OR_BAD_ENTRIES,
        )
    try:
        verify_consistency(state.size, cp.size, proof, state.root, cp.root)
    except ProofError as exc:
        return AuditError(
            f"the checkpoint for size {cp.size} is not consistent with the verified "
            f"checkpoint for size {state.size}: {exc}",
            FORK,
        )
    return AuditError(
        f"the checkpoint for size {cp.size} is consistent with size {state.size}, but the "
        "served entry bundles do not hash to its root",
        BAD_ENTRIES,
    )


@dataclass
class AuditReport:
    checkpoint: Checkpoint
    entries_checked: int
    previous_size: int | None
    lines: list[str]


def audit(
    fetch: Callable[[str], bytes], log_key: Ed25519Verifier, state: AuditState | None
) -> tuple[AuditReport, AuditState]:
    """Audit the log behind ``fetch`` (``path -> bytes``, raising FileNotFoundError on 404)."""
    lines: list[str] = []
    try:
        note = fetch("checkpoint").decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError) as e:
        raise AuditError(f"cannot read the checkpoint: {e}") from e
    try:
        cp = open_checkpoint(note, log_key)
    except CheckpointError as e:
        raise AuditError(str(e), "checkpoint") from e
    lines.append(f"checkpoint: {cp.origin} size {cp.size}, signature by {log_key.name} verified")

    previous = state if state is not None else AuditState.empty(cp.origin)
    previous.edge()  # a damaged state is refused before anything is read
    check_checkpoint(previous, cp)
    reader = TileReader(fetch, cp.size)
    try:
        new_state = extend(previous, cp, tree_entries(reader, previous.size), lambda: reader)
        lines.append(f"entries: {cp.size - previous.size} new entries re-hashed; root matches")
        tile_root = reader.root()
        if tile_root != cp.root:
            raise AuditError(
                f"the hash tiles give root {tile_root.hex()}, the checkpoint says "
                f"{cp.root.hex()}",
                BAD_TILES,
            )
        lines.append("tiles: root recomputed from hash tiles matches")
        if previous.size > 0:
            proof = reader.consistency_proof(previous.size)
            verify_consistency(previous.size, cp.size, proof, previous.root, cp.root)
            lines.append(
                f"consistency: size {previous.size} -> {cp.size} proven ({len(proof)} hashes)"
            )
    except TileError as e:
        raise AuditError(str(e)) from e
    except ProofError as e:
        raise AuditError(str(e), FORK) from e
    report = AuditReport(cp, cp.size - previous.size, None if state is None else state.size, lines)
    return report, new_state
