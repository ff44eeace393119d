"""Upstream failures: the client gets a clear error and no receipt exists for what it got.

A misbehaving OpenAI-compatible upstream (test-only) is switched between failure modes:
refused connection, timeout, 5xx, malformed JSON, a reply without id, a stream cut mid-way,
a stream that ends without ``data: [DONE]``, and a stream that stalls.
"""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import threading

import httpx
import openai
import pytest
from asgi_server import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from teelog.node.demo_upstream import DEMO_MODEL

MODE: dict[str, str] = {"mode": "ok"}


def _chunk(cid: str, text: str) -> bytes:
    payload = {"id": cid, "object": "chat.completion.chunk", "model": DEMO_MODEL,
               "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _chat(request: Request) -> Response:
    mode = MODE["mode"]
    await request.body()
    if mode == "5xx":
        return Response(b'{"error": "CUDA out of memory"}', status_code=500,
                        media_type="application/json")
    if mode == "malformed":
        return Response(b'{"id": "chatcmpl-bad", "choices": [', media_type="application/json")
    if mode == "no-id":
        return Response(b'{"object": "chat.completion", "choices": []}',
                        media_type="application/json")
    if mode == "slow":
        await asyncio.sleep(2)
        return Response(b'{"id": "chatcmpl-slow"}', media_type="application/json")

    async def cut():
        yield _chunk("chatcmpl-cut", "partial ")
        yield _chunk("chatcmpl-cut", "answer ")
        raise RuntimeError("upstream worker died")  # uvicorn drops the connection mid-body

    async def no_done():
        yield _chunk("chatcmpl-nodone", "partial ")

    async def stall():
        yield _chunk("chatcmpl-stall", "partial ")
        await asyncio.sleep(2)
        yield b"data: [DONE]\n\n"

    streams = {"cut": cut, "no-done": no_done, "stall": stall}
    return StreamingResponse(streams[mode](), media_type="text/event-stream")


@pytest.fixture(scope="module")
def bad_upstream():
    app = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
    with serve(app) as url:
        yield url


@pytest.fixture
def node(start_node, bad_upstream):
    return start_node(bad_upstream, read_timeout=0.5)


def _client(node) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{node.url}/v1", api_key=node.token, max_retries=0)


def _receipts(node) -> list:
    return httpx.get(f"{node.url}/v1/receipts").json()["data"]


def _post(node, stream: bool = False) -> httpx.Response:
    body = {"model": DEMO_MODEL, "messages": [{"role": "user", "content": "hi"}],
            "stream": stream}
    return httpx.post(f"{node.url}/v1/chat/completions", json=body, headers=node.auth,
                      timeout=10)


@pytest.mark.parametrize(
    ("mode", "status", "code", "phrase"),
    [
        ("5xx", 502, "upstream_http_error", "HTTP 500: {\"error\": \"CUDA out of memory\"}"),
        ("malformed", 502, "upstream_malformed_json", "malformed JSON"),
        ("no-id", 502, "upstream_missing_id", "no id"),
        ("slow", 504, "upstream_timeout", "timed out"),
    ],
)
def test_failed_json_reply_gives_an_openai_error_and_no_receipt(node, mode, status, code, phrase):
    MODE["mode"] = mode
    r = _post(node)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code
    assert error["type"] == "upstream_error"
    assert phrase in error["message"]
    assert _receipts(node) == []


def test_openai_client_raises_on_upstream_5xx(node):
    MODE["mode"] = "5xx"
    with pytest.raises(openai.InternalServerError, match="upstream answered HTTP 500"):
        _client(node).chat.completions.create(
            model=DEMO_MODEL, messages=[{"role": "user", "content": "hi"}]
        )


def test_refused_upstream_gives_502_and_no_receipt(start_node):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = start_node(f"http://127.0.0.1:{port}")
    r = _post(node)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unreachable"
    assert _receipts(node) == []
    assert httpx.get(f"{node.url}/v1/models").json()["error"]["code"] == "upstream_unreachable"


@pytest.mark.parametrize(
    ("mode", "code"),
    [("cut", "upstream_failed"), ("no-done", "upstream_stream_cut"), ("stall", "upstream_timeout")],
)
def test_stream_not_delivered_whole_ends_with_error_event_and_no_receipt(node, mode, code):
    MODE["mode"] = mode
    r = _post(node, stream=True)
    assert r.status_code == 200  # the stream had started when the upstream failed
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[0].startswith("{") and json.loads(events[0])["choices"][0]["delta"]
    last = json.loads(events[-1])
    assert last["error"]["code"] == code
    assert "data: [DONE]" not in r.text.splitlines()
    assert _receipts(node) == []
    signature = httpx.get(f"{node.url}/v1/signature/chatcmpl-{mode.replace('-', '')}",
                          headers=node.auth)
    assert signature.status_code == 404


def test_openai_client_raises_on_a_cut_stream(node):
    MODE["mode"] = "cut"
    stream = _client(node).chat.completions.create(
        model=DEMO_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="stream"):
        list(stream)


class _DroppingUpstream(socketserver.ThreadingTCPServer):
    """Closes the first ``drops`` connections after reading the request, without answering
    (what a keep-alive connection closing under a request looks like), then answers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.seen = 0
        super().__init__(("127.0.0.1", 0), _DroppingHandler)


class _DroppingHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _DroppingUpstream)
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.request.recv(65536)
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < length:
            body += self.request.recv(65536)
        server.seen += 1
        if server.seen <= server.drops:
            return  # close without a response
        reply = json.dumps({"id": f"chatcmpl-retry-{server.seen}", "model": DEMO_MODEL}).encode()
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(reply)).encode() + b"\r\n\r\n" + reply
        )


@pytest.mark.parametrize(("drops", "status", "receipts"), [(1, 200, 1), (2, 502, 0)])
def test_request_dropped_unanswered_is_resent_once(start_node, drops, status, receipts):
    server = _DroppingUpstream(drops)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        node = start_node(f"http://127.0.0.1:{server.server_address[1]}")
        r = _post(node)
        assert r.status_code == status
        assert server.seen == 2  # one retry, never more
        assert len(_receipts(node)) == receipts
        if status == 502:
            assert r.json()["error"]["code"] == "upstream_failed"
    finally:
        server.shutdown()
        server.server_close()
