"""Shared fixtures: every storage test runs on SQLite and, when TEELOG_TEST_POSTGRES_URL is set,
on PostgreSQL in a schema of its own (dropped afterwards)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, monkeypatch):
    """``None`` for the default SQLite database in the data directory, or a PostgreSQL URL
    whose ``search_path`` is a fresh schema."""
    if request.param == "sqlite":
        monkeypatch.delenv("TEELOG_DATABASE_URL", raising=False)  # really the default
        yield None
        return
    yield request.getfixturevalue("postgres_url")
