"""The explorer: Flask pages, JSON API, Atom feeds and the static C2SP log over one data
directory (docs/explorer.md). ``create_app(data_dir)`` builds it; ``teelog serve`` runs it.

``create_app`` is imported lazily so that ``teelog --help`` (which imports ``explorer.cli``)
does not load Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
