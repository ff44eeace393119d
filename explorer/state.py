"""What the explorer's blueprints share: the log, its index, the read queries and settings.

The app factory (``explorer.app.create_app``) builds one :class:`Explorer` and stores it in
``app.extensions["teelog"]``; blueprints reach it with :func:`explorer`. Keeping it here, not
in the factory's module, means the blueprints and the factory do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import Engine, create_engine

from .config import ExplorerConfig
from .indexer import Indexer
from .ratelimit import RateLimiter
from .store import Store


@dataclass(slots=True)
class Explorer:
    """What the blueprints share: the log, its index, the read queries and settings."""

    log: Any  # teelog.log.Log
    indexer: Indexer
    store: Store
    config: ExplorerConfig
    verify_limiter: RateLimiter
    collateral: Any = None  # explorer.verifying.CollateralPool
    evidence: Any = None  # explorer.evidence.EvidenceCache


def read_engine(engine: Engine) -> Engine:
    """An engine for the explorer's reads.

    The log's SQLite engine opens every transaction with ``BEGIN IMMEDIATE`` (right for its
    writes), which would make each page view take the database's write lock; reads go through
    a plain engine on the same file instead, which in WAL mode never blocks or is blocked by
    the writer. Other databases (PostgreSQL) share the log's engine and pool.
    """
    if engine.url.get_backend_name() != "sqlite":
        return engine
    return create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 60})


def explorer() -> Explorer:
    """The :class:`Explorer` of the current application."""
    return current_app.extensions["teelog"]
