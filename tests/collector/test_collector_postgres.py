"""The collector's state in PostgreSQL (TEELOG_DATABASE_URL), in a schema of its own."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import sqlalchemy as sa
from collector_fakes import (
    NEAR_MODEL_AT,
    PinnedClock,
    collector_config,
    entries_of,
    vllm_proxy_report_from_near,
    vllm_proxy_report_from_sample,
)
from sqlalchemy.engine import make_url
from teelog.collector import Collector
from teelog.log import Log

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url():
    base = os.environ.get("TEELOG_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TEELOG_TEST_POSTGRES_URL is not set")
    schema = f"collector_test_{uuid.uuid4().hex[:12]}"
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


def test_polls_receipts_and_changes_on_postgres(
    postgres_url, tmp_path, fake_node, teelog_node, receiver, monkeypatch
):
    data = tmp_path / "data"
    Log.create(data, origin="test.example/teelog", database_url=postgres_url)
    log = Log.open(data, database_url=postgres_url)
    provider, own = fake_node(), teelog_node()
    provider.serve("/v1/attestation/report", vllm_proxy_report_from_sample())
    own.chat("hello")
    monkeypatch.setenv("HOOK_SECRET", "s")
    config = collector_config(
        data,
        [{"name": "provider", "url": provider.url, "receipts": False},
         {"name": "own", "url": own.url}],
        webhooks=[{"url": receiver.url, "secret_env": "HOOK_SECRET"}],
    )
    with Collector(config, log=log, clock=PinnedClock(NEAR_MODEL_AT)) as collector:
        assert collector.run_once().errors == []
        provider.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        own.chat("again")
        summary = collector.run_once()
    assert summary.errors == []
    assert [o.appended for o in summary.receipts] == [1]
    assert sorted(e["seq"] for _, e in entries_of(log, "receipt")) == [1, 2]
    ((_, body),) = receiver.received
    assert json.loads(body)["node"] == "provider"
