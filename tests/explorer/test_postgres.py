"""The explorer on PostgreSQL: shared index, concurrent indexers, pages and lookups."""

from __future__ import annotations

import threading

import pytest
from explorer_fixtures import NODE, build_log
from teelog.explorer import create_app
from teelog.explorer.indexer import Indexer

pytestmark = pytest.mark.postgres


def test_replicas_sharing_postgres_index_each_entry_once_and_serve_lookups(tmp_path, postgres_url):
    built = build_log(tmp_path / "log", receipts=30, database_url=postgres_url)
    size = built.log.checkpoint().size
    indexers = [Indexer(built.log, batch=4) for _ in range(3)]
    errors: list[BaseException] = []

    def run(ix: Indexer) -> None:
        try:
            ix.catch_up()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ix,)) for ix in indexers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with built.log.engine.connect() as conn:
        idx = [r[0] for r in conn.exec_driver_sql("SELECT idx FROM explorer_entries ORDER BY idx")]
    assert idx == list(range(size))

    client = create_app(tmp_path / "log", log=built.log, config={"index_interval": 0}).test_client()
    node = client.get(f"/api/v1/nodes/{NODE}").get_json()
    assert node["receipts"] == len(built.receipt_indexes)
    sig = built.receipts[5]["signatures"]["ecdsa"]["signature"]
    body = client.get("/api/v1/receipts", query_string={"signature": sig}).get_json()
    assert body["index"] == built.receipt_indexes[5]
    html = client.get(f"/entries/{built.attestation_indexes[0]}").get_data(as_text=True)
    assert "report.mr_td" in html
    built.log.close()
