"""The verify page: real inputs verified as of a chosen time, never logged; size and rate limits."""

from __future__ import annotations

import io
import json

from explorer_fixtures import BUNDLE, DATA, SIGNATURES
from teelog.explorer import create_app
from teelog.explorer.ratelimit import RateLimiter


def _app(built, **config):
    return create_app(built.data_dir, log=built.log, config={"index_interval": 0, **config})


def test_verifies_the_real_bundle_at_its_pinned_time_without_logging_it(built):
    client = _app(built).test_client()
    size = built.log.checkpoint().size
    resp = client.post(
        "/verify",
        data={
            "file": (io.BytesIO(BUNDLE.read_bytes()), "report.json"),
            "kind": "auto",
            "at": "2026-03-11T03:33:20Z",
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Read as a report" in html
    assert "tdx.quote" in html and "eventlog.rtmr" in html
    assert "No nonce was given" in html
    # the model attestation's quote verifies with the collateral already in the log
    assert "UpToDate" in html
    assert built.log.checkpoint().size == size


def test_verification_time_in_unix_seconds_is_the_same_time_as_rfc3339(built):
    """The form reads times as ``teelog verify --at`` does (it read RFC 3339 only before)."""
    client = _app(built).test_client()
    pages = [
        client.post("/verify", data={"text": BUNDLE.read_text(), "at": at}).get_data(as_text=True)
        for at in ("1773200000", "2026-03-11T03:33:20Z")
    ]
    assert "UpToDate" in pages[0] and "2026-03-11T03:33:20Z" in pages[0]
    assert pages[0].count("verified") == pages[1].count("verified") > 0


def test_verifies_real_signature_samples_valid_and_invalid(built):
    client = _app(built).test_client()
    samples = json.loads(SIGNATURES.read_text())["samples"]
    seen = set()
    for sample in samples:
        text = json.dumps(sample["signature_response"])
        html = client.post("/verify", data={"text": text}).get_data(as_text=True)
        assert "Read as a receipt" in html
        ok = sample["expected"]["signature_valid"]
        assert ('receipt.signature</code></td><td><span class="badge ok">' in html) == ok
        seen.add(ok)
    assert seen == {True, False}


def test_verifies_a_bare_quote(built):
    client = _app(built).test_client()
    quote = (DATA / "tdx" / "dcapqvl_tdx_v5.quote.bin").read_bytes()
    resp = client.post(
        "/verify",
        data={"file": (io.BytesIO(quote), "quote.bin"), "at": "2026-03-05T10:50:03Z"},
        content_type="multipart/form-data",
    )
    html = resp.get_data(as_text=True)
    assert "Read as a quote" in html and "tdx.quote" in html


def test_a_bare_quote_without_collateral_for_its_time_says_why_next_to_its_status(built):
    client = _app(built).test_client()
    quote = (DATA / "tdx" / "dcapqvl_tdx_v4_uptodate.quote.bin").read_bytes()
    resp = client.post(
        "/verify",
        data={"file": (io.BytesIO(quote), "quote.bin"), "at": "2025-07-04T10:16:31Z"},
        content_type="multipart/form-data",
    )
    html = resp.get_data(as_text=True)
    # The log holds collateral for this FMSPC, but only for Aug-Sep 2026.
    assert (
        '<h3>quote <span class="badge muted">unverifiable</span></h3>\n<p class="status-reason">'
        "TCB not evaluated: collateral for TDX FMSPC b0c06f000000 is archived only for the "
        "[issue, next update] window [2026-08-13T10:45:38Z, 2026-09-11T23:57:11Z], which does "
        "not cover the verification time 2025-07-04T10:16:31Z</p>"
    ) in html
    assert "signatures and PCK chain to Intel&#39;s root verified; TCB not evaluated" in html


def test_rejects_garbage_with_a_clear_message(built):
    client = _app(built).test_client()
    resp = client.post("/verify", data={"text": '{"hello": 1}', "kind": "report"})
    assert resp.status_code == 400
    assert "not an input teelog can read" in resp.get_data(as_text=True)
    assert "keys: hello" in resp.get_data(as_text=True)
    assert client.post("/verify", data={"text": "  "}).status_code == 400
    bad_time = client.post("/verify", data={"text": "00", "at": "yesterday"})
    assert "is not RFC 3339" in bad_time.get_data(as_text=True)


def test_input_larger_than_the_limit_is_refused(built):
    client = _app(built, verify_max_bytes=1000).test_client()
    resp = client.post("/verify", data={"text": "a" * 1001})
    assert resp.status_code == 413
    huge = client.post("/verify", data={"text": "a" * 200_000})
    assert huge.status_code == 413


def test_each_client_address_is_rate_limited(built):
    client = _app(built, verify_rate=2).test_client()
    codes = [client.post("/verify", data={"text": "00"}).status_code for _ in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429
    limited = client.post("/verify", data={"text": "00"})
    assert limited.headers["Retry-After"]
    other = client.post("/verify", data={"text": "00"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code != 429


def test_forwarded_for_counts_only_behind_a_trusted_proxy(built):
    client = _app(built, verify_rate=1).test_client()
    client.post("/verify", data={"text": "00"}, headers={"X-Forwarded-For": "1.1.1.1"})
    spoofed = client.post("/verify", data={"text": "00"}, headers={"X-Forwarded-For": "2.2.2.2"})
    assert spoofed.status_code == 429  # the header is ignored: same socket address
    proxied = _app(built, verify_rate=1, trusted_proxies=1).test_client()
    proxied.post("/verify", data={"text": "00"}, headers={"X-Forwarded-For": "1.1.1.1"})
    other = proxied.post("/verify", data={"text": "00"}, headers={"X-Forwarded-For": "2.2.2.2"})
    assert other.status_code != 429


def test_rate_limiter_refills_over_time_and_bounds_memory():
    now = [0.0]
    limiter = RateLimiter(2, 60.0, max_clients=3, clock=lambda: now[0])
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") == 0.0
    wait = limiter.acquire("a")
    assert 29.0 < wait <= 30.0
    now[0] += 30.0
    assert limiter.acquire("a") == 0.0
    for key in "bcdef":
        limiter.acquire(key)
    assert len(limiter._buckets) <= 3
    assert RateLimiter(0).acquire("x") > 0


def test_a_pasted_receipt_is_judged_by_what_the_logs_attestations_say_about_its_key(fresh):
    """``receipt.signer`` on the verify page: the same decision as the collector's, from the
    log's attestations naming the key (``Store.signer_attestations``)."""
    from explorer_fixtures import append_attestation, key_address, sign_text, verified_bundle

    text = "a" * 64 + ":" + "b" * 64
    address, signature = sign_text(text)
    receipt = json.dumps({"text": text, "signature": signature, "signing_address": address,
                          "signing_algo": "ecdsa"})

    def signer_row() -> str:
        client = _app(fresh).test_client()
        html = client.post("/verify", data={"text": receipt}).get_data(as_text=True)
        row = html[html.index("<code>receipt.signer</code>"):]
        return row[: row.index("</tr>")]

    assert '<span class="badge bad">fail' in signer_row()  # no attestation names the key
    raw, _doc, result = verified_bundle()
    statuses = {v.role: v.status for v in result.attestations}
    # First named by a part that did not verify, then by one that did.
    for role in ("gateway", "model"):

        def rename(entry, role=role):
            for att in entry["attestations"]:
                if att["role"] == role:
                    att["signing_address"] = key_address()

        index = append_attestation(fresh.log, raw=raw, result=result, mutate=rename)
        row = signer_row()
        if role == "gateway":
            want = {"unverifiable": "muted\">skip", "failed": "bad\">fail"}[statuses["gateway"]]
            assert f'<span class="badge {want}' in row
            assert f"#{index}: {statuses['gateway']}" in row
        else:
            assert '<span class="badge ok">pass' in row and f"attestation #{index}" in row
