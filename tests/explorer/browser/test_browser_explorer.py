"""The explorer's real pages in headless Chromium, over a log of real data.

The log (tests/explorer/conftest.py ``built``) holds the NEAR AI bundle verified at its pinned
time, receipts signed with a test key, and the real signature samples of the NEAR AI docs. The
app is served by werkzeug on 127.0.0.1 with its own CSP; nothing is mocked in the browser
except, in the tamper tests, the page's bytes on their way in.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator

import pytest
from browser_support import browser_verdict
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

MODEL_ADDRESS = "0x56d070df1c6be444b007839ef9cf67cec7c12b8b"  # the NEAR model attestation's signer


@pytest.fixture(scope="module")
def site(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def tamper_verify_data(page, url: str, change) -> None:
    """Serve the page at ``url`` with ``change`` applied to its verify-data JSON."""

    def handle(route):
        response = route.fetch()
        body = response.text()
        m = re.search(
            r'(<script type="application/json" id="verify-data">)(.*?)(</script>)', body, re.S
        )
        assert m, "the page has no verify-data island"
        data = json.loads(m.group(2))
        change(data)
        island = json.dumps(data).replace("<", "\\u003c")
        route.fulfill(response=response, body=body[: m.start(2)] + island + body[m.end(2) :])

    page.route(url, handle)


def flip_first_byte(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 0x80
    return base64.b64encode(bytes(raw)).decode()


def test_attestation_entry_page_renders_the_real_report_and_verifies_green(page, site, built):
    index = built.attestation_indexes[0]
    assert browser_verdict(page, f"{site}/entries/{index}") == "ok"
    text = page.inner_text("body")
    assert MODEL_ADDRESS in text.lower()
    assert "verified" in text.lower()
    result = page.inner_text("#browser-verify")
    assert "explorer.test/teelog" in result and "key id" in result
    assert f"tree size {built.log.checkpoint().size}" in result
    assert page.js_errors == []


def test_real_near_docs_receipt_signature_verifies_in_the_browser(page, site, built):
    docs = [
        (i, e)
        for i, e in zip(built.receipt_indexes, built.receipts, strict=True)
        if e["node_instance"] == "journal-docs"
    ]
    index, entry = docs[0]
    assert browser_verdict(page, f"{site}/entries/{index}") == "ok"
    address = entry["signatures"]["ecdsa"]["signing_address"].lower()
    assert f"signed by {address}" in page.inner_text("#browser-verify")


def test_real_near_docs_sample_whose_signature_fails_turns_red(page, site, built):
    """One NEAR AI docs sample recovers to another address than it claims (the collector logged
    it as failed); the browser finds that by itself."""
    failed = [
        i
        for i, e in zip(built.receipt_indexes, built.receipts, strict=True)
        if e["node_instance"] == "journal-docs" and e["status"] == "failed"
    ]
    assert failed
    assert browser_verdict(page, f"{site}/entries/{failed[0]}") == "fail"
    assert "recovers to" in page.inner_text("#browser-verify")


def test_test_key_receipt_verifies_green_too(page, site, built):
    index = built.receipt_indexes[0]
    assert browser_verdict(page, f"{site}/entries/{index}") == "ok"
    assert "secp256k1" in page.inner_text("#browser-verify")


@pytest.mark.parametrize(
    ("what", "change", "says"),
    [
        (
            "proof",
            lambda d: d.update(
                inclusion_proof=[
                    flip_first_byte(d["inclusion_proof"][0]),
                    *d["inclusion_proof"][1:],
                ]
            ),
            "not the checkpoint root",
        ),
        (
            "entry",
            lambda d: d.update(entry_b64=flip_first_byte(d["entry_b64"])),
            "not the checkpoint root",
        ),
        (
            "checkpoint",
            lambda d: d.update(checkpoint=d["checkpoint"].replace("\n", "\n\n", 1)),
            "Checkpoint",
        ),
    ],
)
def test_tampered_page_turns_red(page, site, built, what, change, says):
    url = f"{site}/entries/{built.receipt_indexes[1]}"
    tamper_verify_data(page, url, change)
    assert browser_verdict(page, url) == "fail", what
    assert says in page.inner_text("#browser-verify")


def test_forged_receipt_signature_turns_red(page, site, built):
    def forge(d):
        entry = json.loads(base64.b64decode(d["entry_b64"]))
        sig = bytearray.fromhex(entry["signatures"]["ecdsa"]["signature"][2:])
        sig[5] ^= 0x01
        entry["signatures"]["ecdsa"]["signature"] = "0x" + sig.hex()
        d["entry_b64"] = base64.b64encode(json.dumps(entry).encode()).decode()
        d.pop("receipt", None)

    url = f"{site}/entries/{built.receipt_indexes[0]}"
    tamper_verify_data(page, url, forge)
    assert browser_verdict(page, url) == "fail"  # the altered entry is no longer in the tree


def test_logged_receipt_with_a_bad_signature_turns_red(page, fresh):
    """The collector logs receipts whose signature fails; the browser must say so itself."""
    from explorer_fixtures import make_receipt, sign_text
    from teelog.entries.receipt import encode_receipt
    from teelog.explorer import create_app

    entry = make_receipt(7)
    other_address, other_sig = sign_text(entry["text"], key="0x" + "5d" * 32)
    entry["signatures"]["ecdsa"]["signature"] = other_sig  # signed by another key
    index = fresh.log.append(encode_receipt(entry))
    app = create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/entries/{index}"
        assert browser_verdict(page, url) == "fail"
        text = page.inner_text("#browser-verify")
        assert "Inclusion proof" in text  # inclusion passed: the entry is in the log
        assert f"recovers to {other_address.lower()}" in text
    finally:
        server.shutdown()


def test_search_finds_the_real_attestation_by_signing_address(page, site, built):
    page.goto(f"{site}/")
    page.fill("input[name=q]", MODEL_ADDRESS)
    page.click("header form button[type=submit]")
    page.wait_for_load_state()
    link = page.locator(f"a[href$='/entries/{built.attestation_indexes[0]}']")
    assert link.count() >= 1
    link.first.click()
    page.wait_for_function(
        "() => ['ok', 'fail'].includes(document.getElementById('browser-verify')"
        "?.dataset.browserVerify)"
    )
    assert page.get_attribute("#browser-verify", "data-browser-verify") == "ok"


def test_home_and_node_pages_render_the_fixture_node(page, site):
    page.goto(f"{site}/")
    assert "nearai-gpt-oss-120b" in page.inner_text("body")
    page.goto(f"{site}/nodes")
    page.click("text=nearai-gpt-oss-120b")
    page.wait_for_load_state()
    body = page.inner_text("body")
    assert "nearai-gpt-oss-120b" in body
    assert page.js_errors == []
