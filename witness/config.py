"""``witness.toml``: the logs a witness cosigns for (c2sp.org/tlog-witness §Introduction).

::

    [[logs]]
    origin = "example.org/log"        # the checkpoint origin line
    vkey = "example.org/log+…+…"      # the log's Ed25519 (type 0x01) verifier key

Each origin appears once; the vkey's type must be 0x01 (a log signature, not a cosignature).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from teelog.log.note import Ed25519Verifier, NoteError, parse_vkey


class WitnessConfigError(ValueError):
    """``witness.toml`` is missing, not TOML, or names a log wrongly."""


@dataclass(frozen=True)
class WitnessedLog:
    """One log the witness cosigns: its origin and the key that must sign its checkpoints."""

    origin: str
    key: Ed25519Verifier


def parse_witness_config(text: str, source: str = "witness.toml") -> dict[str, WitnessedLog]:
    """Parse the config text; return ``{origin: WitnessedLog}``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WitnessConfigError(f"{source} is not valid TOML: {e}") from e
    unknown = set(doc) - {"logs"}
    if unknown:
        raise WitnessConfigError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    logs = doc.get("logs", [])
    if not isinstance(logs, list) or not all(isinstance(x, dict) for x in logs):
        raise WitnessConfigError(f"{source}: logs must be an array of tables ([[logs]])")
    out: dict[str, WitnessedLog] = {}
    for i, table in enumerate(logs):
        where = f"{source}: logs[{i}]"
        extra = set(table) - {"origin", "vkey"}
        if extra:
            raise WitnessConfigError(f"{where}: unknown keys {', '.join(sorted(extra))}")
        origin, vkey = table.get("origin"), table.get("vkey")
        if not isinstance(origin, str) or not origin:
            raise WitnessConfigError(f"{where}: origin must be a non-empty string")
        if not isinstance(vkey, str):
            raise WitnessConfigError(f"{where}: vkey must be a string")
        try:
            key = parse_vkey(vkey)
        except NoteError as e:
            raise WitnessConfigError(f"{where}: vkey: {e}") from e
        if not isinstance(key, Ed25519Verifier):
            raise WitnessConfigError(f"{where}: vkey must be a log key (type 0x01)")
        if origin in out:
            raise WitnessConfigError(f"{where}: origin {origin!r} is listed twice")
        out[origin] = WitnessedLog(origin, key)
    return out


def read_witness_config(path: Path) -> dict[str, WitnessedLog]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise WitnessConfigError(f"{path}: no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise WitnessConfigError(f"{path}: cannot read: {e}") from e
    return parse_witness_config(text, str(path))
