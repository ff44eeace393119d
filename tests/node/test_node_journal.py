"""The receipt journal: survives restarts, keeps seq strictly increasing, honours retention;
the receipts feed pages through it."""

from __future__ import annotations

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from teelog.attestation.times import rfc3339
from teelog.node.demo_upstream import DEMO_MODEL
from teelog.node.journal import Journal
from teelog.node.receipt import Receipt, Signature

DAY = 86400.0
NOW = 1_790_000_000.0  # 2026-09-21T…Z: a fixed clock for retention


def _receipt(chat_id: str, signed_at: float) -> Receipt:
    return Receipt(
        seq=0, chat_id=chat_id, model="m", request_sha256="a" * 64, response_sha256="b" * 64,
        signed_at=rfc3339(signed_at), ecdsa=Signature("0x" + "1" * 40, "0x" + "2" * 130),
        ed25519=Signature("3" * 64, "4" * 128),
    )


def _complete(node, prompt: str) -> str:
    r = httpx.post(f"{node.url}/v1/completions", headers=node.auth,
                   json={"model": DEMO_MODEL, "prompt": prompt})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_rfc3339_is_utc_second_precision_with_z():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_790_000_000.9) == "2026-09-21T14:13:20Z"


def test_journal_survives_restart_with_same_instance_and_continuing_seq(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    instance = j.instance_id
    assert [j.append(_receipt(f"c{i}", NOW)).seq for i in range(3)] == [1, 2, 3]
    j.close()
    j = Journal(path)
    assert j.instance_id == instance
    assert j.append(_receipt("c3", NOW)).seq == 4
    assert j.by_chat_id("c1").seq == 2
    j.close()
    assert Journal(tmp_path / "other.sqlite").instance_id != instance


def test_seq_is_never_reused_after_retention_deletes_the_newest(tmp_path):
    j = Journal(tmp_path / "j.sqlite", retention_days=1)
    for i in range(3):
        j.append(_receipt(f"old{i}", NOW - 2 * DAY))
    assert j.prune(now=NOW) == 3
    assert j.page(0, 10) == ([], False)
    assert j.append(_receipt("new", NOW)).seq == 4


def test_retention_keeps_recent_receipts_and_drops_old_ones(tmp_path):
    j = Journal(tmp_path / "j.sqlite", retention_days=1)
    j.append(_receipt("old", NOW - 1.5 * DAY))
    j.append(_receipt("fresh", NOW - 0.5 * DAY))
    assert j.prune(now=NOW) == 1
    assert j.by_chat_id("old") is None
    assert j.by_chat_id("fresh").seq == 2


def test_retention_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        Journal(tmp_path / "j.sqlite", retention_days=0)


def test_by_chat_id_returns_the_newest_receipt_for_a_reused_id(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.append(_receipt("same", NOW))
    j.append(_receipt("same", NOW + 1))
    assert j.by_chat_id("same").seq == 2


def test_node_restart_keeps_receipts_and_signatures(start_node, demo_upstream, tmp_path):
    path = tmp_path / "node.sqlite"
    first = start_node(demo_upstream, journal_path=path)
    ids = [_complete(first, f"before restart {i}") for i in range(3)]
    before = httpx.get(f"{first.url}/v1/receipts").json()
    first.stop()

    second = start_node(demo_upstream, journal_path=path)  # new process, new random keys
    after_id = _complete(second, "after restart")
    feed = httpx.get(f"{second.url}/v1/receipts").json()
    assert feed["node_instance"] == before["node_instance"]
    assert [r["seq"] for r in feed["data"]] == [1, 2, 3, 4]
    assert [r["chat_id"] for r in feed["data"]] == [*ids, after_id]
    assert feed["data"][:3] == before["data"]

    # A receipt signed before the restart is still served, with the key that signed it.
    sig = httpx.get(f"{second.url}/v1/signature/{ids[0]}", headers=second.auth).json()
    assert sig["signing_address"] == first.keys.ecdsa.address != second.keys.ecdsa.address
    assert Account.recover_message(
        encode_defunct(text=sig["text"]), signature=sig["signature"]
    ) == first.keys.ecdsa.address


def test_receipts_feed_pages_in_order_with_cursor(start_node, demo_upstream):
    node = start_node(demo_upstream)
    ids = [_complete(node, f"page {i}") for i in range(5)]
    url = f"{node.url}/v1/receipts"

    page = httpx.get(url, params={"limit": 2}).json()
    assert page["object"] == "list"
    assert [r["chat_id"] for r in page["data"]] == ids[:2]
    assert (page["next"], page["has_more"]) == (2, True)

    page = httpx.get(url, params={"after": page["next"], "limit": 2}).json()
    assert [r["seq"] for r in page["data"]] == [3, 4]
    assert (page["next"], page["has_more"]) == (4, True)

    page = httpx.get(url, params={"after": 4, "limit": 2}).json()
    assert [r["chat_id"] for r in page["data"]] == ids[4:]
    assert (page["next"], page["has_more"]) == (5, False)

    empty = httpx.get(url, params={"after": 5}).json()
    assert (empty["data"], empty["next"], empty["has_more"]) == ([], 5, False)
    # Past the end, the cursor stays where the caller put it.
    assert httpx.get(url, params={"after": 99}).json()["next"] == 99


def test_feed_limit_is_capped(start_node, demo_upstream):
    node = start_node(demo_upstream)
    _complete(node, "one")
    page = httpx.get(f"{node.url}/v1/receipts", params={"limit": 10**9}).json()
    assert len(page["data"]) == 1 and page["has_more"] is False


@pytest.mark.parametrize(("durable", "level"), [(False, 1), (True, 2)])
def test_durable_journal_syncs_every_commit(tmp_path, durable, level):
    j = Journal(tmp_path / "j.sqlite", durable=durable)
    # SQLite PRAGMA synchronous: 1 = NORMAL (WAL fsync at checkpoints), 2 = FULL (every commit).
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == level
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    j.close()
