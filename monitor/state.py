"""The monitor's durable state: the last verified checkpoint and what it has seen and said.

One JSON file in the audit core's format (``teelog.log.audit.AuditState``: origin, size, root,
checkpoint, right_edge) with the monitor's fields beside them (version, vkey, nodes, alerted,
pending); version 1 files (``root_b64``, ``frontier_b64``) are still read. It is replaced
with ``teelog.log.fsio.write_durable`` (temporary file, fsync, rename, fsync of the directory),
so a crash leaves either the old state or the new one, never a mix. Evidence (checkpoints that
disagree) is written beside it, in ``<state file>.evidence/``, and never deleted by the monitor.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from teelog.log.audit import AuditError, AuditState
from teelog.log.fsio import write_durable
from teelog.log.merkle import EMPTY_ROOT

STATE_VERSION = 2


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

    ``audit`` is the audit core's state (``teelog.log.audit.AuditState``, the same fields
    ``teelog log verify --state`` keeps): the last checkpoint whose signature and consistency
    were verified and whose entries were all read, and the compact range of that tree (the
    complete-subtree hashes of RFC 9162 ``D[0:size]``, left to right), from which the next root
    is recomputed from new entries only. ``alerted`` holds the id of every event already raised
    (so an event is raised once); ``pending`` holds raised alerts not delivered yet (kept until
    the sink accepts them).
    """

    vkey: str
    audit: AuditState
    nodes: dict[str, NodeView] = field(default_factory=dict)
    alerted: list[str] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.audit.size

    def to_json(self) -> dict[str, Any]:
        """One JSON object: the audit state's fields, then the monitor's (docs/monitor.md)."""
        audit = AuditState(
            self.audit.origin,
            self.audit.size,
            self.audit.root,
            self.audit.checkpoint,
            self.audit.right_edge,
        )
        return {
            **audit.to_obj(),
            "version": STATE_VERSION,
            "vkey": self.vkey,
            "nodes": {name: asdict(view) for name, view in self.nodes.items()},
            "alerted": list(self.alerted),
            "pending": list(self.pending),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MonitorState:
        """A state of this version, or of version 1 (``root_b64``, ``frontier_b64``)."""
        if not isinstance(obj, dict):
            raise StateError("the state is not a JSON object")
        version = obj.get("version")
        if version == 1:
            obj = {
                **obj,
                "root": obj.get("root_b64") or base64.b64encode(EMPTY_ROOT).decode(),
                "right_edge": obj.get("frontier_b64", []),
            }
        elif version != STATE_VERSION:
            raise StateError(f"state version {version!r} is not {STATE_VERSION} (or 1)")
        try:
            audit = AuditState.from_obj(obj)
        except AuditError as exc:
            raise StateError(str(exc)) from exc
        audit.extra = {}
        nodes = {name: NodeView(**view) for name, view in obj.get("nodes", {}).items()}
        if version == 1:
            for view in nodes.values():
                view.measurements = {_v1_label(k): m for k, m in view.measurements.items()}
        return cls(
            vkey=obj["vkey"],
            audit=audit,
            nodes=nodes,
            alerted=list(obj.get("alerted", [])),
            pending=list(obj.get("pending", [])),
        )


def _v1_label(key: str) -> str:
    """A version 1 node key (``role/model``, ``model`` ``None`` when absent) as the label of
    ``teelog.entries.changes.labelled``."""
    role, _, model = key.partition("/")
    return role if model in ("", "None") else f"{role}[{model}]"


def load_state(path: Path, *, vkey: str, origin: str) -> MonitorState:
    """The state in ``path``, or a fresh one (size 0) when the file does not exist.

    Raises :class:`StateError` if the file is damaged or was written for another key: a monitor
    never silently starts over, which would hide a fork behind a reset.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return MonitorState(vkey=vkey, audit=AuditState.empty(origin))
    try:
        state = MonitorState.from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError) as exc:
        raise StateError(f"{path}: not a monitor state file ({exc})") from exc
    if state.vkey != vkey:
        raise StateError(f"{path} is the state of a monitor of another key ({state.vkey})")
    return state


def save_state(path: Path, state: MonitorState) -> None:
    """Write ``state`` to ``path`` atomically and durably."""
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    write_durable(path, data)


def evidence_dir(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".evidence")
