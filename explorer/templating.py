"""Jinja2 filters and globals of the explorer's templates.

Everything here returns plain strings that Jinja2 then autoescapes: no filter marks anything
safe, so untrusted log content can never become markup by passing through one.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask
from teelog.attestation.times import parse_rfc3339

STATUS_CLASSES = {
    "verified": "ok",
    "pass": "ok",
    "warning": "warn",
    "warn": "warn",
    "failed": "bad",
    "fail": "bad",
    "unverifiable": "muted",
    "skip": "muted",
}


def status_class(status: Any) -> str:
    """CSS class of a verdict or check status (unknown statuses look neutral)."""
    return STATUS_CLASSES.get(status, "muted") if isinstance(status, str) else "muted"


def short(value: Any, keep: int = 10) -> str:
    """A long identifier shortened for tables: ``abcdef1234…7890`` (full value in a title)."""
    text = "" if value is None else str(value)
    if len(text) <= 2 * keep + 1:
        return text
    return f"{text[:keep]}…{text[-6:]}"


def ago(value: Any, now: float | None = None) -> str:
    """A human age for an RFC 3339 time or a number of seconds: ``3 min ago``."""
    if value is None:
        return "unknown"
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            moment = parse_rfc3339(str(value))
        except ValueError:
            return str(value)
        seconds = (time.time() if now is None else now) - moment.timestamp()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"


def pretty_json(value: Any) -> str:
    """Indented JSON text of a value (for showing untrusted structures as text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def register_filters(app: Flask) -> None:
    """Install the filters on ``app``'s Jinja2 environment."""
    app.jinja_env.filters.update(
        status_class=status_class, short=short, ago=ago, pretty_json=pretty_json
    )
