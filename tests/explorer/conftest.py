"""Fixtures of the explorer's tests: logs of real data and apps over them.

``built`` (one per module) is a log with the real NEAR AI bundle verified at its pinned time,
test receipts and the NEAR AI docs' real signature samples; tests that append get their own
log from ``fresh``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from explorer_fixtures import Built, build_log
from teelog.explorer import create_app


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    b = build_log(tmp_path_factory.mktemp("log"))
    yield b
    b.log.close()


@pytest.fixture(scope="module")
def app(built: Built):
    return create_app(built.data_dir, log=built.log, config={"index_interval": 0})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Built]:
    b = build_log(tmp_path / "log", receipts=1)
    yield b
    b.log.close()


@pytest.fixture
def fresh_client(fresh: Built):
    return create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0}).test_client()
