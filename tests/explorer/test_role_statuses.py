"""Statuses a person can read at a glance: each part of an entry with its own status, and the
one-line reason for anything not verified, in every list, on the node page and in the API.

The real NEAR AI bundle, verified at its pinned time: its model attestation verifies (8 GPUs);
its gateway's does not (the collateral at hand for its platform is of another time).
"""

from __future__ import annotations

import re

from explorer_fixtures import NODE, append_raw
from teelog.explorer.entry_view import parse_entry, status_reason
from teelog.explorer.templating import status_class


def _roles(built) -> dict[str, dict]:
    return {a["role"]: a for a in built.verdict["attestations"]}


def _expected_reason(att: dict) -> str:
    first = next(c for c in att["checks"] if c["status"] in ("fail", "skip"))
    return f"{first['name']}: {first['detail']}"


def test_lists_show_each_role_with_its_status_and_the_reason_for_what_did_not_verify(
    client, built
):
    roles = _roles(built)
    assert roles["model"]["status"] == "verified"
    gateway = roles["gateway"]
    assert gateway["status"] in ("failed", "unverifiable")
    reason = _expected_reason(gateway)
    index = built.attestation_indexes[0]
    for url in ("/", "/nodes", "/entries", f"/search?q={NODE}"):
        html = client.get(url).get_data(as_text=True)
        shown = re.sub(r"\s+", " ", html)
        gateway_badge = (f'<span class="role">gateway</span><span class="badge '
                         f'{status_class(gateway["status"])}">{gateway["status"]}</span>')
        assert gateway_badge in shown, url
        assert '<span class="role">model</span><span class="badge ok">verified</span>' in shown
        assert f"<li>gateway: {reason[:60]}" in shown, url
        assert "<li>model:" not in shown, url  # nothing to explain for what verified
    api = client.get(f"/api/v1/entries/{index}").get_json()
    assert [(r["role"], r["status"]) for r in api["roles"]] == [
        ("gateway", gateway["status"]), ("model", "verified")
    ]


def test_the_api_lists_carry_the_per_role_statuses(client, built):
    (node,) = [n for n in client.get("/api/v1/nodes").get_json()["items"] if n["name"] == NODE]
    by_role = {r["role"]: r for r in node["roles"]}
    assert by_role["model"] == {
        "role": "model", "model": "openai/gpt-oss-120b", "status": "verified", "reason": None
    }
    assert by_role["gateway"]["reason"] == _expected_reason(_roles(built)["gateway"])
    items = client.get("/api/v1/entries?type=attestation").get_json()["items"]
    assert {r["role"] for r in items[-1]["roles"]} == {"gateway", "model"}
    receipts = client.get("/api/v1/entries?type=receipt").get_json()["items"]
    for item in receipts:
        (only,) = item["roles"]
        assert only["role"] == "receipt" and only["status"] == item["status"]
        assert (only["reason"] is None) == (item["status"] == "verified")


def test_the_node_page_leads_with_what_is_best_proven(client, built):
    html = client.get(f"/nodes/{NODE}").get_data(as_text=True)
    lead = re.search(r'<section class="lead">(.*?)</section>', html, re.S).group(1)
    model_at = lead.index("<strong>model</strong>")
    gateway_at = lead.index("<strong>gateway</strong>")
    assert model_at < gateway_at
    assert "genuine Intel TDX, TCB UpToDate" in lead
    assert "evidence of 8 NVIDIA HOPPER GPU(s) verified" in lead
    # The gateway's line says why it is not verified, and claims nothing else.
    gateway_line = lead[gateway_at:]
    assert "genuine Intel TDX" not in gateway_line
    assert _expected_reason(_roles(built)["gateway"])[:40] in gateway_line
    # The detailed verdicts follow the same order.
    assert html.index("<h3>model") < html.index("<h3>gateway")


def test_a_reason_is_given_only_for_what_did_not_verify():
    checks = [
        {"name": "gpu.rim", "status": "skip", "detail": "no reference files"},
        {"name": "tdx.tcb", "status": "skip", "detail": "TCB status\nnot evaluated"},
    ]
    assert status_reason("verified", checks) is None
    # An informative skip does not explain unverifiable when another check does; one line.
    assert status_reason("unverifiable", checks) == "tdx.tcb: TCB status not evaluated"
    assert status_reason("failed", [*checks, {"name": "x", "status": "fail", "detail": "d"}]) == (
        "x: d"
    )
    assert status_reason("warning", [{"name": "w", "status": "warn", "detail": "old"}]) == "w: old"


def test_entries_that_cannot_be_read_have_no_parts_and_lists_still_render(fresh, fresh_client):
    index = append_raw(fresh.log, b"not json")
    assert parse_entry(index, b"not json").roles == []
    html = fresh_client.get("/entries").get_data(as_text=True)
    assert f'href="/entries/{index}"' in html
    (item,) = [
        e for e in fresh_client.get("/api/v1/entries").get_json()["items"] if e["index"] == index
    ]
    assert item["roles"] == [] and item["type"] == "malformed"
