"""The collector's state in PostgreSQL (TEELOG_DATABASE_URL), in a schema of its own."""

from __future__ import annotations

import json

import pytest
from collector_fakes import (
    NEAR_MODEL_AT,
    PinnedClock,
    collector_config,
    entries_of,
    vllm_proxy_report_from_near,
    vllm_proxy_report_from_sample,
)
from teelog.collector import Collector
from teelog.log import Log

pytestmark = pytest.mark.postgres


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
