"""The bytes of a log entry: canonical JSON (RFC 8785) within the log's entry size.

Every entry type (docs/entries.md) is one JSON object, encoded with the ``rfc8785`` package so
that the same entry always has the same bytes (and so the same RFC 9162 leaf hash). The size
bound is the log's: a C2SP tlog-tiles entry bundle stores each entry behind a 16-bit length,
so :data:`MAX_ENTRY_BYTES` and :class:`EntryTooLarge` are ``teelog.log``'s, re-used here
rather than defined again.
"""

from __future__ import annotations

from typing import Any

import rfc8785
from teelog.log.tiles import MAX_ENTRY_SIZE, EntryTooLarge

__all__ = [
    "ENTRY_VERSION",
    "MAX_ENTRY_BYTES",
    "SHORT_DETAIL",
    "EntryTooLarge",
    "canonical",
    "encode_bounded",
    "shorten",
]

MAX_ENTRY_BYTES = MAX_ENTRY_SIZE
ENTRY_VERSION = 1
# Check details longer than this are cut when an entry must be shortened (``…`` marks the cut).
SHORT_DETAIL = 200


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``obj``."""
    return rfc8785.dumps(obj)


def shorten(text: Any) -> Any:
    """``text`` cut to :data:`SHORT_DETAIL` characters (``…`` marks the cut); non-text as is."""
    if isinstance(text, str) and len(text) > SHORT_DETAIL:
        return text[: SHORT_DETAIL - 1] + "…"
    return text


def encode_bounded(entry: dict[str, Any]) -> bytes:
    """Canonical bytes of ``entry``; :class:`EntryTooLarge` if they exceed the log's bound."""
    data = canonical(entry)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(
            f"{entry.get('type')} entry of node {entry.get('node')!r} is {len(data)} bytes"
        )
    return data
