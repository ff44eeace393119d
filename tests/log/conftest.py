"""Shared fixtures: every storage test runs on SQLite and, when TEELOG_TEST_POSTGRES_URL is set,
on PostgreSQL in a schema of its own (dropped afterwards)."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, monkeypatch):
    """``None`` for the default SQLite database in the data directory, or a PostgreSQL URL
    whose ``search_path`` is a fresh schema."""
    if request.param == "sqlite":
        monkeypatch.delenv("TEELOG_DATABASE_URL", raising=False)  # really the default
        yield None
        return
    base = os.environ.get("TEELOG_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TEELOG_TEST_POSTGRES_URL is not set")
    schema = f"log_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
