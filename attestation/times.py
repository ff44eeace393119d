"""Times and durations as teelog reads and writes them, in one place.

Every command option, form field, API parameter and config value that takes a time accepts the
same two spellings (docs/architecture.md "Times"):

- an RFC 3339 date-time (RFC 3339 §5.6), ``2026-03-11T09:33:20Z`` or with a numeric offset;
  fractions of a second are kept; a time without a zone is read as UTC;
- Unix seconds, ``1773221600`` (an integer or decimal number of seconds since 1970-01-01 UTC).

Every time teelog writes (entries, alerts, feeds, pages) is RFC 3339 in UTC with second
precision and a ``Z`` suffix, as docs/entries.md "Times" fixes for the log.

Durations (collector config, ``teelog demo``, ``teelog monitor``) are a positive number with
an optional unit: ``30s``, ``5m``, ``1h``, ``1d``, ``250ms``, or plain seconds (``90``,
``2.5``).

This module lives in ``attestation/`` because that package imports nothing else of ours and
every other package may import it; ``log/`` needs no calendar times.
"""

from __future__ import annotations

import argparse
import math
import re
from datetime import UTC, datetime

__all__ = [
    "TimeFormatError",
    "duration_option",
    "duration_or_zero_option",
    "format_duration",
    "parse_duration",
    "parse_rfc3339",
    "parse_time",
    "rfc3339",
]

_UNIX = re.compile(r"[0-9]+(\.[0-9]+)?")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|)")
_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class TimeFormatError(ValueError):
    """A time or duration that is neither spelling teelog accepts; the message says which."""


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from RFC 3339 text or Unix seconds: what a person types (command
    options, forms, API parameters, config)."""
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise TimeFormatError("empty time: give RFC 3339 (2026-03-11T09:33:20Z) or Unix seconds")
    if _UNIX.fullmatch(value):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TimeFormatError(f"Unix time {value[:40]!r} is out of range") from exc
    try:
        return parse_rfc3339(value)
    except TimeFormatError as exc:
        raise TimeFormatError(
            f"time {value[:60]!r} is neither RFC 3339 (2026-03-11T09:33:20Z) nor Unix seconds"
        ) from exc


def parse_rfc3339(text: str) -> datetime:
    """An aware UTC datetime from RFC 3339 text only: what a file format holds (entries,
    collateral, feeds), where a bare number is not a time."""
    value = text.strip() if isinstance(text, str) else ""
    try:
        # fromisoformat reads RFC 3339's "Z" (Python 3.11); "z" and "t" are RFC 3339 too.
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise TimeFormatError(
            f"time {value[:60]!r} is not RFC 3339 (2026-03-11T09:33:20Z)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def rfc3339(moment: datetime | float) -> str:
    """RFC 3339 UTC, second precision, ``Z`` suffix; a naive datetime is taken as UTC and a
    number as Unix seconds (fractions are dropped, not rounded)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(int(moment), UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str | float, *, zero: bool = False) -> float:
    """Seconds from ``30s``, ``5m``, ``1h``, ``1d``, ``250ms`` or plain seconds (text or a
    number). It must be positive; with ``zero``, 0 is allowed too (for "never" / "forever")."""
    if isinstance(text, bool):
        raise TimeFormatError(f'expected a duration like "30s", got {text!r}')
    if isinstance(text, int | float):
        seconds = float(text)
    elif isinstance(text, str) and (match := _DURATION.fullmatch(text.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        shown = f'"{text}"' if isinstance(text, str) else repr(text)
        raise TimeFormatError(f'expected a duration like "30s", got {shown[:60]}')
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise TimeFormatError(f"must be a positive duration, got {text!r}")
    return seconds


def duration_option(text: str) -> float:
    """``argparse`` type of a duration option (``--interval 30s``): :func:`parse_duration`."""
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration_or_zero_option(text: str) -> float:
    """``argparse`` type of a duration option where 0 means "none" or "forever"."""
    try:
        return parse_duration(text, zero=True)
    except TimeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_duration(seconds: float) -> str:
    """The shortest spelling :func:`parse_duration` reads back as ``seconds``."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"
