"""Auditing a served log (``teelog log verify``): what a monitor checks, from static files only.

Given a way to fetch tlog-tiles resources, the log's vkey and the state saved by the previous
run, :func:`audit` checks:

1. the checkpoint's signature and origin (c2sp.org/tlog-checkpoint, signed-note);
2. every new entry: its bundle entry hashes to the level-0 tile cell, and re-hashing all entries
   from the saved right edge gives the checkpoint root (as Cert Spotter does);
3. the root computed from the hash tiles alone equals the checkpoint root;
4. an RFC 9162 consistency proof, built from tiles, from the previously seen checkpoint.

The state (JSON) keeps the last verified checkpoint and the right edge of the tree, so the next
run only downloads what is new.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import Checkpoint, CheckpointError, open_checkpoint
from .fsio import write_durable
from .merkle import CompactRange, ProofError, leaf_hash, verify_consistency
from .note import Ed25519Verifier
from .tiles import TILE_WIDTH, TileError, TileReader, split_hashes


class AuditError(RuntimeError):
    """The served log failed a check; the message says which and why."""


@dataclass
class AuditState:
    """What the previous run verified: the checkpoint note and the tree's right edge."""

    origin: str
    size: int
    root: bytes
    checkpoint: str
    right_edge: list[bytes] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "origin": self.origin,
                "size": self.size,
                "root": base64.b64encode(self.root).decode(),
                "checkpoint": self.checkpoint,
                "right_edge": [base64.b64encode(h).decode() for h in self.right_edge],
            },
            indent=2,
        )

    @classmethod
    def load(cls, path: Path) -> AuditState | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError) as e:
            raise AuditError(f"state file {path} is not valid JSON: {e}") from e
        try:
            return cls(
                raw["origin"],
                int(raw["size"]),
                base64.b64decode(raw["root"]),
                raw["checkpoint"],
                [base64.b64decode(h) for h in raw["right_edge"]],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise AuditError(f"state file {path} is malformed: {e}") from e

    def save(self, path: Path) -> None:
        write_durable(path, self.to_json().encode())


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
        raise AuditError(str(e)) from e
    lines.append(f"checkpoint: {cp.origin} size {cp.size}, signature by {log_key.name} verified")

    start, edge = 0, CompactRange()
    if state is not None:
        if state.origin != cp.origin:
            raise AuditError(f"the state is for {state.origin!r}, the log is {cp.origin!r}")
        if cp.size < state.size:
            raise AuditError(
                f"the log shrank: checkpoint size {cp.size} < previously verified {state.size}"
            )
        try:
            edge = CompactRange(state.size, state.right_edge)
        except ValueError as e:
            raise AuditError(f"state right edge: {e}") from e
        if edge.root() != state.root:
            raise AuditError("the state's right edge does not match its root (state corrupted)")
        start = state.size

    reader = TileReader(fetch, cp.size)
    try:
        for n in range(start // TILE_WIDTH, -(-cp.size // TILE_WIDTH)):
            entries = reader.bundle(n)
            cells = split_hashes(reader.tile(0, n))
            for off in range(max(start - n * TILE_WIDTH, 0), len(entries)):
                h = leaf_hash(entries[off])
                if h != cells[off]:
                    raise AuditError(
                        f"entry {n * TILE_WIDTH + off} does not hash to its level-0 tile cell"
                    )
                edge.append(h)
        if edge.root() != cp.root:
            raise AuditError(
                f"re-hashing the entries gives root {edge.root().hex()}, the checkpoint says "
                f"{cp.root.hex()}"
            )
        lines.append(f"entries: {cp.size - start} new entries re-hashed; root matches")
        tile_root = reader.root()
        if tile_root != cp.root:
            raise AuditError(
                f"the hash tiles give root {tile_root.hex()}, the checkpoint says {cp.root.hex()}"
            )
        lines.append("tiles: root recomputed from hash tiles matches")
        if state is not None and state.size > 0:
            proof = reader.consistency_proof(state.size)
            verify_consistency(state.size, cp.size, proof, state.root, cp.root)
            lines.append(
                f"consistency: size {state.size} -> {cp.size} proven ({len(proof)} hashes)"
            )
    except (TileError, ProofError) as e:
        raise AuditError(str(e)) from e
    new_state = AuditState(cp.origin, cp.size, cp.root, note, list(edge.hashes))
    report = AuditReport(cp, cp.size - start, None if state is None else state.size, lines)
    return report, new_state
