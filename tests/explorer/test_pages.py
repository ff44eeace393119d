"""HTML pages over the real NEAR AI bundle log: content, proofs for the browser, hostile data."""

from __future__ import annotations

import base64
import json
import re

from explorer_fixtures import MODEL_ADDRESS, NODE, append_attestation, append_raw, verified_bundle
from teelog.explorer.app import CSP
from teelog.explorer.templating import status_class
from teelog.log import leaf_hash, parse_vkey, verify_consistency, verify_inclusion
from teelog.log.checkpoint import open_checkpoint


def _verify_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="verify-data">(.*?)</script>', html, re.S)
    assert m, "entry page has no verify-data island"
    return json.loads(m.group(1))


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", html)


def test_home_shows_log_size_nodes_and_latest_entries(client, built):
    html = client.get("/").get_data(as_text=True)
    size = built.log.checkpoint().size
    assert f"<dd>{size}</dd>" in html
    assert f'href="/nodes/{NODE}"' in html
    assert f'href="/entries/{size - 1}"' in html


def test_nodes_page_lists_status_badge_tcb_and_last_seen(client, built):
    html = client.get("/nodes").get_data(as_text=True)
    assert NODE in html
    assert f"badge {status_class(built.verdict['status'])}" in html
    tcb = [a["measurements"]["tcb_status"] for a in built.verdict["attestations"]]
    shown = next((t for t in tcb if t and t != "UpToDate"), next((t for t in tcb if t), None))
    assert shown is not None and f"<td>{shown}</td>" in html


def test_node_page_has_verdict_measurements_timeline_and_status_picture(client, built):
    resp = client.get(f"/nodes/{NODE}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    model = built.verdict["attestations"][1]
    assert model["measurements"]["mrtd"] in html
    assert '<svg class="status-history"' in html
    assert f'href="/entries/{built.attestation_indexes[0]}"' in html
    assert 'class="timeline"' in html


def test_unknown_node_is_404(client):
    assert client.get("/nodes/no-such-node").status_code == 404


def test_attestation_entry_page_shows_quote_fields_replay_compose_gpus_and_collateral(
    client, built
):
    idx = built.attestation_indexes[0]
    html = client.get(f"/entries/{idx}").get_data(as_text=True)
    m = built.verdict["attestations"][1]["measurements"]
    # every quote field with its explanation
    assert "report.mr_td" in html and "MRTD: measurement of the initial guest memory" in html
    assert "report.rtmr3" in html and m["rtmr3"] in html
    # event-log replay per RTMR matches the quote
    assert html.count('<span class="badge ok">match</span>') == 8  # 4 RTMRs × 2 attestations
    # the compose file as text with its hash
    assert 'class="compose"' in html
    assert m["compose_hash"] in html
    assert "equals the measured compose hash" in html
    # one row per GPU, with driver and VBIOS from the signed SPDM report
    assert html.count("<td>HOPPER</td>") >= 8
    assert m["gpus"][0]["driver_version"] in html
    # checks of the verdict, TCB, collateral window, raw blobs
    assert "tdx.quote" in html and "eventlog.rtmr" in html
    assert "valid at verification time" in html
    assert "tcbEvaluationDataNumber" in html or "TCB evaluation data number" in html
    assert re.search(r'href="/log/blob/[0-9a-f]{64}"', html)


def test_entry_page_gives_the_browser_a_proof_that_verifies(client, built):
    for idx in (built.attestation_indexes[0], built.receipt_indexes[-1]):
        data = _verify_data(client.get(f"/entries/{idx}").get_data(as_text=True))
        assert set(data) >= {"index", "entry_b64", "inclusion_proof", "checkpoint", "vkey"}
        entry = base64.b64decode(data["entry_b64"])
        assert entry == built.log.entry(idx)
        cp = open_checkpoint(data["checkpoint"], parse_vkey(data["vkey"]))
        proof = [base64.b64decode(h) for h in data["inclusion_proof"]]
        verify_inclusion(idx, cp.size, leaf_hash(entry), proof, cp.root)


def test_receipt_page_shows_signed_text_signer_and_missing_vouching(client, built):
    idx = built.receipt_indexes[0]
    receipt = built.receipts[0]
    html = client.get(f"/entries/{idx}").get_data(as_text=True)
    assert receipt["text"] in html
    assert receipt["signatures"]["ecdsa"]["signature"] in html
    assert "No attestation in the log names this key" in html
    data = _verify_data(html)
    assert data["receipt"] == {
        "text": receipt["text"],
        "signature": receipt["signatures"]["ecdsa"]["signature"],
        "signing_address": receipt["signatures"]["ecdsa"]["signing_address"],
    }


def test_entry_beyond_the_log_is_404_and_raw_bytes_download(client, built):
    size = built.log.checkpoint().size
    assert client.get(f"/entries/{size}").status_code == 404
    raw = client.get(f"/entries/{size - 1}/raw")
    assert raw.data == built.log.entry(size - 1)
    assert "attachment" in raw.headers["Content-Disposition"]


def test_every_page_carries_a_strict_csp_and_no_inline_script(client, built):
    for url in (
        "/",
        "/nodes",
        f"/nodes/{NODE}",
        "/entries",
        f"/entries/{built.attestation_indexes[0]}",
        f"/entries/{built.receipt_indexes[0]}",
        "/search?q=x",
        "/changes",
        "/log",
        "/verify",
    ):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert resp.headers["Content-Security-Policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert "frame-ancestors 'none'" in CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        html = resp.get_data(as_text=True)
        for tag in _scripts(html):
            assert 'type="application/json"' in tag or "src=" in tag, (url, tag)
        assert " style=" not in html and " onload=" not in html and " onclick=" not in html


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_hostile_node_names_event_log_and_compose_file_are_inert(fresh, fresh_client):
    _raw, doc, _ = verified_bundle()
    model = doc["model_attestations"][0]
    model["event_log"][-1]["event_payload"] = HOSTILE.encode().hex()
    model["event_log"][-1]["event"] = HOSTILE
    model["info"]["tcb_info"]["app_compose"] = "</pre>" + HOSTILE
    raw2, _doc2, result = verified_bundle(doc)
    idx = append_attestation(fresh.log, node=HOSTILE, raw=raw2, result=result)
    append_raw(fresh.log, {"type": HOSTILE, "node": HOSTILE, "v": 1})
    for url in (
        f"/entries/{idx}",
        f"/entries/{idx + 1}",
        "/",
        "/nodes",
        "/entries",
        f"/search?q={HOSTILE}",
        "/changes",
    ):
        html = fresh_client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
    page = fresh_client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in page  # shown, as text
    assert "differs from the measured compose hash" in page
    node_page = fresh_client.get("/nodes/" + HOSTILE.replace("/", "%2F"))
    assert node_page.status_code in (200, 404)
    assert "<script>alert" not in node_page.get_data(as_text=True)


def test_search_page_finds_each_kind_of_value(client, built):
    m = built.verdict["attestations"][1]["measurements"]
    receipt = built.receipts[0]
    att, rec = built.attestation_indexes[0], built.receipt_indexes[0]
    cases = {
        receipt["signatures"]["ecdsa"]["signature"]: rec,
        receipt["chat_id"]: rec,
        receipt["signatures"]["ecdsa"]["signing_address"]: rec,
        receipt["response_sha256"]: rec,
        m["quote_sha256"]: att,
        m["rtmr1"]: att,
        m["gpus"][0]["vbios_version"]: att,
        MODEL_ADDRESS: att,
        NODE: att,
        str(att): att,
    }
    for q, idx in cases.items():
        html = client.get("/search", query_string={"q": q}).get_data(as_text=True)
        assert f'href="/entries/{idx}"' in html, q
    empty = client.get("/search", query_string={"q": "nothing-like-this"}).get_data(as_text=True)
    assert "Nothing in the log matches" in empty


def test_pages_reject_out_of_bounds_pagination(client):
    for qs in ("limit=0", "limit=201", "limit=abc", "cursor=-1", "cursor=x1"):
        assert client.get(f"/entries?{qs}").status_code == 400, qs


def test_entries_pages_walk_the_whole_log_once(client, built):
    seen, url = [], "/api/v1/entries?limit=2"
    while url:
        body = client.get(url).get_json()
        seen += [e["index"] for e in body["items"]]
        url = f"/api/v1/entries?limit=2&cursor={body['next']}" if body["next"] else None
    assert seen == list(reversed(range(built.log.checkpoint().size)))
    html = client.get("/entries?limit=2").get_data(as_text=True)
    assert 'rel="next"' in html


def test_log_page_shows_checkpoint_vkey_and_a_consistency_proof_that_verifies(client, built):
    size = built.log.checkpoint().size
    html = client.get("/log", query_string={"from": "2", "to": str(size)}).get_data(as_text=True)
    assert built.log.vkey in html
    assert built.log.checkpoint().note.split("\n")[0] in html
    hashes = re.findall(r'<ol class="proof">(.*?)</ol>', html, re.S)[0]
    proof = [base64.b64decode(h) for h in re.findall(r"<code>([A-Za-z0-9+/=]+)</code>", hashes)]
    verify_consistency(2, size, proof, built.log.root(2), built.log.root(size))
    bad = client.get("/log", query_string={"from": str(size + 5)}).get_data(as_text=True)
    assert "is larger than the log" in bad


def test_unknown_entry_type_page_shows_raw_text(fresh, fresh_client):
    idx = append_raw(fresh.log, {"type": "audit-note", "v": 1, "text": "<b>hi</b>"})
    html = fresh_client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "teelog does not know this kind of entry" in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html


def test_the_verify_command_on_the_entry_page_reproduces_the_logged_verdict(
    client, built, tmp_path, monkeypatch, capsys
):
    import shlex

    from teelog.cli import main

    idx = built.attestation_indexes[0]
    html = client.get(f"/entries/{idx}").get_data(as_text=True)
    command = re.search(r'<pre class="note">(teelog verify .*?)</pre>', html).group(1)
    entry = json.loads(built.log.entry(idx))
    (tmp_path / "report.json").write_bytes(built.log.blobs.get(entry["blobs"]["report"]))
    for n, digest in enumerate(entry["blobs"]["collateral"], 1):
        (tmp_path / f"collateral-{n}.json").write_bytes(built.log.blobs.get(digest))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    main(shlex.split(command)[1:])
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"status": entry["status"], "attestations": entry["attestations"]}


def test_node_timeline_highlights_changes_and_pages(fresh, fresh_client):
    raw, _doc, result = verified_bundle()
    changed = append_attestation(
        fresh.log,
        raw=raw,
        result=result,
        mutate=lambda e: e["attestations"][1]["measurements"].update(rtmr3="ee" * 48),
    )
    html = fresh_client.get(f"/nodes/{NODE}").get_data(as_text=True)
    assert html.count('class="has-changes"') == 1
    assert "model[openai/gpt-oss-120b].rtmr3" in html
    assert f'title="{"ee" * 48}"' in html
    assert html.count("<rect ") == 2  # one bar per attestation
    first = fresh_client.get(f"/nodes/{NODE}?limit=1").get_data(as_text=True)
    assert f'href="/entries/{changed}"' in first
    nxt = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = fresh_client.get(nxt).get_data(as_text=True)
    assert f'href="/entries/{fresh.attestation_indexes[0]}"' in second
    assert 'rel="next"' not in second
    home = fresh_client.get("/").get_data(as_text=True)
    assert "model[openai/gpt-oss-120b].rtmr3" in home  # latest changes on the home page


GATEWAY_REASON = (
    "collateral for TDX FMSPC b0c06f000000 is archived only for the [issue, next update] window "
    "[2026-08-13T10:45:38Z, 2026-09-11T23:57:11Z], which does not cover the verification time "
    "2026-03-11T03:33:20Z"
)


def test_the_entry_page_says_next_to_the_status_why_collateral_was_not_used(client, built):
    html = client.get(f"/entries/{built.attestation_indexes[0]}").get_data(as_text=True)
    gateway = re.search(r'<h2>gateway <span class="badge [a-z]+">unverifiable</span></h2>\s*'
                        r'<p class="status-reason">([^<]*)</p>', html)
    assert gateway is not None
    assert gateway.group(1) == f"TCB not evaluated: {GATEWAY_REASON}"
    assert html.count('class="status-reason"') == 1  # the model used its collateral


def test_the_node_page_shows_the_reason_too(client, built):
    html = client.get(f"/nodes/{NODE}").get_data(as_text=True)
    assert f'<p class="status-reason">TCB not evaluated: {GATEWAY_REASON}</p>' in html


def test_a_hostile_collateral_reason_is_escaped(fresh, fresh_client):
    raw, _doc, result = verified_bundle()

    def hostile(entry):
        for check in entry["attestations"][0]["checks"]:
            if check["name"] == "tdx.collateral":
                check["detail"] = "<script>alert(1)</script>"

    idx = append_attestation(fresh.log, raw=raw, result=result, mutate=hostile)
    html = fresh_client.get(f"/entries/{idx}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert (
        '<p class="status-reason">TCB not evaluated: &lt;script&gt;alert(1)&lt;/script&gt;</p>'
        in html
    )
