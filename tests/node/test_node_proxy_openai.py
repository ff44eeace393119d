"""The official OpenAI client against the node in front of the demo upstream.

Every check is made from the client's side with independent code: the request and response
bytes are captured on the wire (a recording httpx transport under the OpenAI client), the
signed text is recomputed from them, the ECDSA signature is recovered with eth-account and the
Ed25519 one verified with cryptography, against the addresses the attestation report gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eth_account import Account
from eth_account.messages import encode_defunct
from teelog.attestation import verify_receipt
from teelog.node.demo_upstream import DEMO_MODEL


class _RecordingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, sink: bytearray) -> None:
        self.inner = inner
        self.sink = sink

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.sink += chunk
            yield chunk

    def close(self) -> None:
        self.inner.close()


class RecordingTransport(httpx.BaseTransport):
    """Keeps the exact body bytes of every request sent and response received."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: list[tuple[bytes, bytearray]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.inner.handle_request(request)
        sink = bytearray()
        self.exchanges.append((body, sink))
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _RecordingStream(response.stream, sink)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def node(start_node, demo_upstream):
    return start_node(demo_upstream)


@pytest.fixture
def client(node):
    transport = RecordingTransport()
    http = httpx.Client(transport=transport)
    c = openai.OpenAI(base_url=f"{node.url}/v1", api_key=node.token, http_client=http,
                      max_retries=0)
    c.recording = transport  # type: ignore[attr-defined]
    yield c
    http.close()


def _signature(node, chat_id: str, algo: str) -> dict:
    r = httpx.get(f"{node.url}/v1/signature/{chat_id}", params={"signing_algo": algo},
                  headers=node.auth)
    assert r.status_code == 200, r.text
    return r.json()


def _report_address(node, algo: str) -> str:
    r = httpx.get(f"{node.url}/v1/attestation/report",
                  params={"nonce": "00" * 31 + "01", "signing_algo": algo})
    assert r.status_code == 200, r.text
    return r.json()["signing_address"]


def _check_signed(node, chat_id: str, request: bytes, response: bytes) -> None:
    """The node's signatures over exactly these bytes, by the addresses it attests."""
    text = f"{hashlib.sha256(request).hexdigest()}:{hashlib.sha256(response).hexdigest()}"

    ecdsa = _signature(node, chat_id, "ecdsa")
    assert ecdsa["text"] == text
    assert ecdsa["signing_algo"] == "ecdsa"
    recovered = Account.recover_message(encode_defunct(text=text), signature=ecdsa["signature"])
    assert recovered == ecdsa["signing_address"] == _report_address(node, "ecdsa")

    ed = _signature(node, chat_id, "ed25519")
    assert ed["text"] == text
    assert not ed["signature"].startswith("0x") and len(ed["signature"]) == 128
    assert ed["signing_address"] == _report_address(node, "ed25519")
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(ed["signing_address"])).verify(
        bytes.fromhex(ed["signature"]), text.encode()
    )


def test_chat_completion_is_signed_over_the_bytes_the_client_exchanged(node, client):
    reply = client.chat.completions.create(
        model=DEMO_MODEL, messages=[{"role": "user", "content": "attest this ünïcode reply"}]
    )
    assert reply.choices[0].message.content.strip() == "attest this ünïcode reply"
    request, response = client.recording.exchanges[-1]
    _check_signed(node, reply.id, request, bytes(response))


def test_streamed_chat_completion_is_signed_over_the_sse_bytes_including_done(node, client):
    stream = client.chat.completions.create(
        model=DEMO_MODEL, messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks).split() == [
        "one", "two", "three", "four"
    ]
    request, response = client.recording.exchanges[-1]
    assert bytes(response).endswith(b"data: [DONE]\n\n")
    _check_signed(node, chunks[0].id, request, bytes(response))


def test_completion_is_signed(node, client):
    reply = client.completions.create(model=DEMO_MODEL, prompt="plain completion please")
    assert reply.choices[0].text.split() == ["plain", "completion", "please"]
    request, response = client.recording.exchanges[-1]
    _check_signed(node, reply.id, request, bytes(response))


def test_streamed_completion_is_signed(node, client):
    chunks = list(client.completions.create(model=DEMO_MODEL, prompt="a b c", stream=True))
    assert "".join(c.choices[0].text for c in chunks).split() == ["a", "b", "c"]
    request, response = client.recording.exchanges[-1]
    _check_signed(node, chunks[0].id, request, bytes(response))


def test_signature_of_a_response_differs_from_a_tampered_text(node, client):
    reply = client.completions.create(model=DEMO_MODEL, prompt="do not tamper")
    request, response = client.recording.exchanges[-1]
    ecdsa = _signature(node, reply.id, "ecdsa")
    tampered = hashlib.sha256(bytes(response) + b" ").hexdigest()
    forged = f"{hashlib.sha256(request).hexdigest()}:{tampered}"
    assert ecdsa["text"] != forged
    assert Account.recover_message(
        encode_defunct(text=forged), signature=ecdsa["signature"]
    ) != ecdsa["signing_address"]


def test_models_are_passed_through_unsigned(node, client):
    assert [m.id for m in client.models.list()] == [DEMO_MODEL]


def test_upstream_client_errors_are_passed_through_without_receipt(node, client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert httpx.get(f"{node.url}/v1/receipts").json()["data"] == []


def test_each_response_gets_one_receipt_in_the_feed_with_hashes_only(node, client):
    client.completions.create(model=DEMO_MODEL, prompt="secret prompt words")
    stream = client.chat.completions.create(
        model=DEMO_MODEL, messages=[{"role": "user", "content": "secret chat words"}],
        stream=True,
    )
    list(stream)
    feed = httpx.get(f"{node.url}/v1/receipts")
    assert feed.status_code == 200
    assert b"secret" not in feed.content
    items = feed.json()["data"]
    assert [i["seq"] for i in items] == [1, 2]
    for item, (request, response) in zip(items, client.recording.exchanges, strict=True):
        assert item["request_sha256"] == hashlib.sha256(request).hexdigest()
        assert item["response_sha256"] == hashlib.sha256(bytes(response)).hexdigest()
        assert item["text"] == f"{item['request_sha256']}:{item['response_sha256']}"
        assert item["model"] == DEMO_MODEL
        assert item["signed_at"].endswith("Z") and len(item["signed_at"]) == 20
        assert Account.recover_message(
            encode_defunct(text=item["text"]), signature=item["ecdsa"]["signature"]
        ) == item["ecdsa"]["signing_address"]


@pytest.mark.parametrize("algo", ["ecdsa", "ed25519"])
def test_signatures_pass_teelogs_own_receipt_verification(node, client, algo):
    reply = client.completions.create(model=DEMO_MODEL, prompt="verify me with teelog")
    request, response = client.recording.exchanges[-1]
    signature = _signature(node, reply.id, algo)
    verdict = verify_receipt(signature, request=request, response=bytes(response),
                             expected_signers={_report_address(node, algo)})
    assert verdict.status == "verified", verdict.to_json()
    tampered = verify_receipt(signature, request=request, response=bytes(response) + b"\n",
                              expected_signers={_report_address(node, algo)})
    assert tampered.status == "failed"
