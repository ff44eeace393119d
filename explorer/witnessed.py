"""The latest checkpoint judged against the log's witness policy, for the API.

The policy is the log's own ``witness-policy`` (log/policy.py, docs/witness.md); the cosigned
checkpoint is the published ``tiles/checkpoint`` (the sequencer re-publishes it with the
cosignatures it collects).  Below quorum is reported as such (``quorum_met: false``); without a
policy the answer is ``None`` (nothing required, nothing claimed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teelog.log.checkpoint import CheckpointError, parse_checkpoint
from teelog.log.note import NoteError, parse_vkey
from teelog.log.policy import POLICY_FILE, PolicyError, read_policy


def witnessed(log: Any) -> dict[str, Any] | None:
    """``{"quorum_met", "cosigned", "witnesses": [{name, cosigned}], "note"}`` or None."""
    path = Path(log.data_dir) / POLICY_FILE
    if not path.exists():
        return None
    try:
        policy = read_policy(path)
    except PolicyError as e:
        return {"quorum_met": False, "cosigned": [], "witnesses": [], "error": str(e)}
    latest = log.checkpoint()
    try:
        note = (Path(log.tiles_dir) / "checkpoint").read_text(encoding="utf-8")
        if parse_checkpoint(note).size != latest.size:
            note = latest.note  # published file behind the record: no cosignatures known
        result = policy.check(note, parse_vkey(log.vkey))
    except (OSError, UnicodeDecodeError, CheckpointError, NoteError) as e:
        return {"quorum_met": False, "cosigned": [], "witnesses": [], "error": str(e)}
    return {
        "quorum_met": result.quorum_met,
        "cosigned": list(result.cosigned),
        "witnesses": [
            {"name": name, "vkey": w.key.vkey, "cosigned": name in result.cosigned}
            for name, w in policy.witnesses.items()
        ],
        "note": note,
    }
