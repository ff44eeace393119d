"""The monitor's durable state: the last verified checkpoint and what it has seen and said.

One JSON file, replaced atomically (write a temporary file in the same directory, fsync it,
rename it over the old one, fsync the directory), so a crash leaves either the old state or the
new one, never a mix. Evidence (checkpoints that disagree) is written beside it, in
``<state file>.evidence/``, and never deleted by the monitor.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_VERSION = 1


class StateError(ValueError):
    """The state file is unreadable, or belongs to another log or key."""


@dataclass
class NodeView:
    """What the monitor last saw of one node: its attestations' measurements, by role and model."""

    index: int
    measurements: dict[str, dict[str, Any]]


@dataclass
class MonitorState:
    """Everything the monitor must remember between runs.

    ``size``/``root_b64``/``checkpoint`` are the last checkpoint whose signature and consistency
    were verified and whose entries were all read; ``frontier_b64`` is the compact range of that
    tree (the complete-subtree hashes of RFC 9162 ``D[0:size]``, left to right), from which the
    next root is recomputed from new entries only. ``alerted`` holds the id of every event
    already raised (so an event is raised once); ``pending`` holds raised alerts not delivered
    yet (kept until the sink accepts them).
    """

    vkey: str
    origin: str
    size: int = 0
    root_b64: str = ""
    checkpoint: str = ""
    frontier_b64: list[str] = field(default_factory=list)
    nodes: dict[str, NodeView] = field(default_factory=dict)
    alerted: list[str] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    version: int = STATE_VERSION

    @property
    def frontier(self) -> list[bytes]:
        return [base64.b64decode(h) for h in self.frontier_b64]

    @frontier.setter
    def frontier(self, hashes: list[bytes]) -> None:
        self.frontier_b64 = [base64.b64encode(h).decode() for h in hashes]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MonitorState:
        if obj.get("version") != STATE_VERSION:
            raise StateError(f"state version {obj.get('version')!r} is not {STATE_VERSION}")
        nodes = {name: NodeView(**view) for name, view in obj.get("nodes", {}).items()}
        return cls(**{**obj, "nodes": nodes})


def load_state(path: Path, *, vkey: str, origin: str) -> MonitorState:
    """The state in ``path``, or a fresh one (size 0) when the file does not exist.

    Raises :class:`StateError` if the file is damaged or was written for another key: a monitor
    never silently starts over, which would hide a fork behind a reset.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return MonitorState(vkey=vkey, origin=origin)
    try:
        state = MonitorState.from_json(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise StateError(f"{path}: not a monitor state file ({exc})") from exc
    if state.vkey != vkey:
        raise StateError(f"{path} is the state of a monitor of another key ({state.vkey})")
    return state


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably: temp file, fsync, rename, fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_state(path: Path, state: MonitorState) -> None:
    """Write ``state`` to ``path`` atomically and durably."""
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    write_atomically(path, data)


def evidence_dir(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".evidence")
