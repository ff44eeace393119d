"""Bad input gets an OpenAI-shaped error that says what was wrong, and changes nothing."""

from __future__ import annotations

import httpx
import pytest
from teelog.node.demo_upstream import DEMO_MODEL


@pytest.fixture
def node(start_node, demo_upstream):
    return start_node(demo_upstream, max_body_bytes=2048)


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _chat_body(text: str = "hi") -> dict:
    return {"model": DEMO_MODEL, "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize(
    ("nonce", "message"),
    [
        ("zz" * 32, "Nonce must be hex-encoded"),
        ("ab" * 31, "Nonce must be 32 bytes"),
        ("ab" * 33, "Nonce must be 32 bytes"),
        ("", "Nonce must be 32 bytes"),
    ],
)
def test_invalid_nonce_is_rejected(node, nonce, message):
    r = httpx.get(f"{node.url}/v1/attestation/report", params={"nonce": nonce})
    error = _error(r, 400)
    assert message in error["message"]
    assert error["param"] == "nonce"


def test_report_without_nonce_uses_a_fresh_random_one(node):
    a = httpx.get(f"{node.url}/v1/attestation/report").json()["request_nonce"]
    b = httpx.get(f"{node.url}/v1/attestation/report").json()["request_nonce"]
    assert len(a) == 64 and a != b


def test_uppercase_nonce_is_accepted_and_echoed_lowercase(node):
    r = httpx.get(f"{node.url}/v1/attestation/report", params={"nonce": "AB" * 32})
    assert r.json()["request_nonce"] == "ab" * 32


@pytest.mark.parametrize("path", ["/v1/attestation/report", "/v1/signature/chatcmpl-x"])
def test_unknown_signing_algorithm_is_rejected(node, path):
    r = httpx.get(f"{node.url}{path}", params={"signing_algo": "rsa"}, headers=node.auth)
    error = _error(r, 400)
    assert error["type"] == "invalid_signing_algo"
    assert error["message"] == "Invalid signing algorithm. Must be 'ed25519' or 'ecdsa'"


def test_unknown_chat_id_is_404(node):
    r = httpx.get(f"{node.url}/v1/signature/chatcmpl-never-served", headers=node.auth)
    error = _error(r, 404)
    assert error["message"] == "Chat id not found or expired"
    assert error["type"] == "not_found"


def test_foreign_signing_address_is_404_and_own_address_in_any_case_is_accepted(node):
    url = f"{node.url}/v1/attestation/report"
    foreign = "0x" + "11" * 20
    error = _error(httpx.get(url, params={"signing_address": foreign}), 404)
    assert error["message"] == "Signing address not found on this server"
    own = node.keys.ecdsa.address.lower()
    assert httpx.get(url, params={"signing_address": own}).json()["signing_address"] == (
        node.keys.ecdsa.address
    )
    ed = node.keys.ed25519.address
    r = httpx.get(url, params={"signing_address": ed, "signing_algo": "ed25519"})
    assert r.json()["signing_address"] == ed
    _error(httpx.get(url, params={"signing_address": own, "signing_algo": "ed25519"}), 404)


def test_oversized_body_is_413_before_reaching_the_upstream(node):
    r = httpx.post(f"{node.url}/v1/chat/completions", json=_chat_body("x" * 4000),
                   headers=node.auth)
    error = _error(r, 413)
    assert "2048 bytes" in error["message"]
    assert httpx.get(f"{node.url}/v1/receipts").json()["data"] == []


def test_oversized_chunked_body_without_length_is_413(node):
    def body():
        for _ in range(10):
            yield b"x" * 512

    r = httpx.post(f"{node.url}/v1/chat/completions", content=body(), headers=node.auth)
    _error(r, 413)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Invalid or missing Authorization header"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "Invalid or missing Authorization header"),
        ({"Authorization": "Bearer wrong-token"}, "Invalid token"),
    ],
)
@pytest.mark.parametrize("route", ["chat", "completions", "signature"])
def test_missing_or_wrong_token_is_401(node, headers, message, route):
    if route == "signature":
        r = httpx.get(f"{node.url}/v1/signature/chatcmpl-x", headers=headers)
    else:
        path = "/v1/chat/completions" if route == "chat" else "/v1/completions"
        r = httpx.post(f"{node.url}{path}", json=_chat_body(), headers=headers)
    error = _error(r, 401)
    assert error["message"] == message
    assert error["type"] == "authentication_error"
    assert r.headers["www-authenticate"] == "Bearer"


def test_report_and_feed_are_public(node):
    assert httpx.get(f"{node.url}/v1/attestation/report").status_code == 200
    assert httpx.get(f"{node.url}/v1/receipts").status_code == 200


@pytest.mark.parametrize(
    ("params", "param"),
    [({"after": "x"}, "after"), ({"after": "-1"}, "after"), ({"limit": "0"}, "limit"),
     ({"limit": "ten"}, "limit")],
)
def test_bad_feed_cursor_is_400(node, params, param):
    error = _error(httpx.get(f"{node.url}/v1/receipts", params=params), 400)
    assert error["param"] == param


def test_unknown_route_is_an_openai_shaped_404(node):
    _error(httpx.get(f"{node.url}/v1/nothing-here"), 404)


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ("\u0661\u0662", "decimal integer (ASCII digits)"),
        ("1_000", "decimal integer (ASCII digits)"),
        ("18446744073709551616", "decimal integer (ASCII digits)"),
        ("9223372036854775808", "below 2^63"),
        ("1" * 5000, "decimal integer (ASCII digits)"),
        ("-1", "at least 0"),
    ],
)
def test_receipts_cursor_that_is_no_64_bit_decimal_is_400(node, after, message):
    r = httpx.get(f"{node.url}/v1/receipts", params={"after": after})
    error = _error(r, 400)
    assert message in error["message"] and error["param"] == "after"


def test_a_doubled_leading_slash_is_answered_as_the_path(node):
    single = httpx.get(f"{node.url}/v1/receipts")
    double = httpx.get(f"{node.url}//v1/receipts")
    assert double.status_code == single.status_code == 200
    assert double.json()["node_instance"] == single.json()["node_instance"]
    report = httpx.get(f"{node.url}//v1/attestation/report", params={"nonce": "ab" * 32})
    assert report.status_code == 200 and report.json()["request_nonce"] == "ab" * 32
