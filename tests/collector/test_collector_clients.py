"""Node clients: each provider's format, and every way a node can misbehave, as typed errors."""

from __future__ import annotations

import json
import time

import pytest
from collector_fakes import (
    DATA,
    chutes_report_from_near,
    near_bundle_bytes,
    vllm_proxy_report_from_near,
)
from teelog.collector.clients import (
    NodeGarbage,
    NodeHTTP,
    NodeHTTPError,
    NodeTimeout,
    NodeTLSError,
    NodeUnreachable,
    NoReceiptsFeed,
    ReceiptsClient,
    ReportClient,
    ResponseTooLarge,
)
from teelog.collector.config import NodeConfig

NONCE = "ab" * 32


def _client(url: str, **kw) -> ReportClient:
    node = NodeConfig(name="n", url=url, **kw)
    return ReportClient(node, NodeHTTP(node))


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (near_bundle_bytes(), "near-gateway"),
        (vllm_proxy_report_from_near(), "vllm-proxy"),
        (chutes_report_from_near(), "redpill-chutes"),
    ],
)
def test_each_provider_format_is_fetched_byte_exact_and_recognised(fake_node, body, fmt):
    node = fake_node()
    node.serve("/v1/attestation/report", body)
    for configured in ("auto", fmt):
        report = _client(node.url, format=configured, model="openai/gpt-oss-120b").fetch_report(
            NONCE
        )
        assert report.raw == body
        assert report.format == fmt
        assert report.doc == json.loads(body)
    query = node.report_requests()[-1]
    assert query["nonce"] == NONCE
    assert query["model"] == "openai/gpt-oss-120b"
    assert ("signing_algo" in query) == (fmt != "redpill-chutes")


def test_format_mismatch_is_garbage(fake_node):
    node = fake_node()
    node.serve("/v1/attestation/report", near_bundle_bytes())
    with pytest.raises(NodeGarbage, match="expected a vllm-proxy report, got one shaped like"):
        _client(node.url, format="vllm-proxy").fetch_report(NONCE)


def test_a_bare_dstack_getquote_answer_is_fetched_as_vllm_proxy_like_the_verifier_reads_it(
    fake_node,
):
    body = (DATA / "reports" / "vllmproxy_sample_dstack_getquote.json").read_bytes()
    node = fake_node()
    node.serve("/v1/attestation/report", body)
    report = _client(node.url, format="auto").fetch_report(NONCE)
    assert report.format == "vllm-proxy"
    assert report.raw == body


def test_json_that_is_no_report_is_garbage(fake_node):
    node = fake_node()
    node.serve("/v1/attestation/report", b'{"error": "x"}')
    with pytest.raises(NodeGarbage, match="not an attestation report"):
        _client(node.url, format="auto").fetch_report(NONCE)


def test_a_report_nested_too_deep_is_garbage_not_a_crash(fake_node):
    node = fake_node()
    node.serve("/v1/attestation/report", b"[" * 5000 + b"]" * 5000)
    with pytest.raises(NodeGarbage, match="nested 5000 levels deep"):
        _client(node.url, format="auto").fetch_report(NONCE)


def test_bearer_token_comes_from_the_environment(fake_node, monkeypatch):
    node = fake_node()
    node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
    monkeypatch.setenv("NODE_TOKEN", "tok-123")
    _client(node.url, token_env="NODE_TOKEN").fetch_report(NONCE)
    assert node.requests[-1][2]["Authorization"] == "Bearer tok-123"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'{"error": "nope"}', "not an attestation report"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_garbage_is_a_typed_error(fake_node, body, match):
    node = fake_node()
    node.serve("/v1/attestation/report", body)
    with pytest.raises(NodeGarbage, match=match):
        _client(node.url).fetch_report(NONCE)


def test_http_error_status_is_reported_with_a_short_body(fake_node):
    node = fake_node()
    node.serve("/v1/attestation/report", b'{"error":{"message":"Invalid token"}}', status=401)
    with pytest.raises(NodeHTTPError, match="HTTP 401") as info:
        _client(node.url).fetch_report(NONCE)
    assert info.value.status_code == 401
    assert info.value.kind == "http"


def test_redirects_are_not_followed(fake_node):
    node, elsewhere = fake_node(), fake_node()
    elsewhere.serve("/v1/attestation/report", near_bundle_bytes())
    node.routes["/v1/attestation/report"] = lambda *_: (
        302, {"Location": elsewhere.url + "/v1/attestation/report"}, b"",
    )
    with pytest.raises(NodeHTTPError, match="redirects are not followed"):
        _client(node.url).fetch_report(NONCE)
    assert elsewhere.requests == []


def test_declared_oversize_body_is_refused_before_reading(fake_node):
    node = fake_node()
    node.serve("/v1/attestation/report", near_bundle_bytes())
    with pytest.raises(ResponseTooLarge, match="exceeds the limit of 1000"):
        _client(node.url, max_response_bytes=1000).fetch_report(NONCE)


def test_streamed_oversize_body_is_cut_at_the_limit(fake_node):
    node = fake_node()
    sent = []

    def endless(*_):
        def chunks():
            for _ in range(10_000):
                sent.append(1)
                yield b" " * 65536
        return 200, {"Content-Type": "application/json"}, chunks()

    node.routes["/v1/attestation/report"] = endless
    with pytest.raises(ResponseTooLarge, match="exceeds the limit"):
        _client(node.url, max_response_bytes=256 * 1024).fetch_report(NONCE)
    assert len(sent) < 10_000  # we stopped reading; the server did not get to send it all


def test_a_node_that_never_answers_times_out(fake_node):
    node = fake_node()
    node.routes["/v1/attestation/report"] = lambda *_: (time.sleep(3), (200, {}, b"{}"))[1]
    started = time.monotonic()
    with pytest.raises(NodeTimeout):
        _client(node.url, timeout=0.3).fetch_report(NONCE)
    assert time.monotonic() - started < 2


def test_a_node_dripping_bytes_is_cut_at_the_deadline(fake_node):
    node = fake_node()

    def drip(*_):
        def chunks():
            yield b'{"intel_quote": "'
            for _ in range(100):
                time.sleep(0.1)
                yield b"00"
        return 200, {"Content-Type": "application/json"}, chunks()

    node.routes["/v1/attestation/report"] = drip
    started = time.monotonic()
    with pytest.raises(NodeTimeout, match="not complete within"):
        _client(node.url, timeout=0.5).fetch_report(NONCE)
    assert time.monotonic() - started < 2


def test_connection_refused_is_unreachable():
    with pytest.raises(NodeUnreachable):
        _client("http://127.0.0.1:9", timeout=2).fetch_report(NONCE)


def test_tls_failure_is_a_tls_error(fake_node):
    node = fake_node()  # plain HTTP: a TLS handshake with it fails
    node.serve("/v1/attestation/report", near_bundle_bytes())
    with pytest.raises(NodeTLSError):
        _client(node.url.replace("http://", "https://"), timeout=2).fetch_report(NONCE)


def _item(number: int, **over):
    item = {
        "seq": number, "chat_id": f"chatcmpl-{number}", "model": "m",
        "text": "a" * 64 + ":" + "b" * 64,
        "request_sha256": "a" * 64, "response_sha256": "b" * 64,
        "signed_at": "2026-04-03T12:00:00Z",
        "ecdsa": {"signing_address": "0x" + "1" * 40, "signature": "0x" + "2" * 130},
        "ed25519": {"signing_address": "3" * 64, "signature": "4" * 128},
    }
    item.update(over)
    return item


def _feed(items, instance="inst-1", **extra):
    doc = {"object": "list", "node_instance": instance, "data": items,
           "next": items[-1]["seq"] if items else 0, "has_more": False}
    doc.update(extra)
    return json.dumps(doc).encode()


def _receipts(url: str) -> ReceiptsClient:
    node = NodeConfig(name="n", url=url)
    return ReceiptsClient(node, NodeHTTP(node))


def test_receipts_page_is_read_and_checked(fake_node):
    node = fake_node()
    node.serve("/v1/receipts", _feed([_item(1), _item(2)]))
    page = _receipts(node.url).fetch(0, 10)
    assert [i["seq"] for i in page.items] == [1, 2]
    assert page.node_instance == "inst-1"
    assert node.requests[-1][1] == {"after": "0", "limit": "10"}


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ([_item(2), _item(1)], "seq does not increase"),
        ([_item(1, seq="1")], "seq is not a positive 64-bit integer"),
        ([_item(1, seq=1 << 63)], "seq is not a positive 64-bit integer"),
        ([_item(1, chat_id="x" * 1000)], "chat_id is not a string"),
        ([_item(1, ecdsa={"signing_address": 5})], "ecdsa is not"),
        ([{k: v for k, v in _item(1).items() if k != "text"}], "lacks 'text'"),
    ],
)
def test_malformed_receipts_are_garbage(fake_node, items, match):
    node = fake_node()
    node.serve("/v1/receipts", _feed(items))
    with pytest.raises(NodeGarbage, match=match):
        _receipts(node.url).fetch(0, 10)


def test_a_node_without_a_feed_says_so(fake_node):
    node = fake_node()
    with pytest.raises(NoReceiptsFeed):
        _receipts(node.url).fetch(0, 10)


def test_more_items_than_asked_is_garbage(fake_node):
    node = fake_node()
    node.serve("/v1/receipts", _feed([_item(i) for i in range(1, 6)]))
    with pytest.raises(NodeGarbage, match="asked for at most 2"):
        _receipts(node.url).fetch(0, 2)
