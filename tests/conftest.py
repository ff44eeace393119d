"""Suite-wide test settings."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest

# The interpreter's default. Importing eth-account (a test-only dependency, used as independent
# code to recover signatures) imports py_ecc, which raises the recursion limit to 100,000 for the
# whole process. With that limit, C code such as the json decoder overflows the C stack on a
# deeply nested hostile document instead of raising RecursionError, and the test process dies
# with SIGSEGV. teelog itself never imports py_ecc, so its processes keep this default; the tests
# must run under the same limit to test what the product does.
DEFAULT_RECURSION_LIMIT = 1000


@pytest.fixture(autouse=True)
def _product_recursion_limit() -> Iterator[None]:
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL (from ``TEELOG_TEST_POSTGRES_URL``) whose ``search_path`` is a fresh
    schema, dropped afterwards; the test is skipped when no server is configured."""
    base = os.environ.get("TEELOG_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TEELOG_TEST_POSTGRES_URL is not set")
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    schema = f"teelog_test_{uuid.uuid4().hex[:12]}"
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
