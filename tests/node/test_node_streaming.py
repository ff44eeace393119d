"""Streams pass through as they arrive, and a stream the client abandons is not signed."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from asgi_server import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from teelog.node.demo_upstream import DEMO_MODEL

RELEASE = threading.Event()  # set by the test when the client has seen the first chunk
FINISHED = threading.Event()  # set by the upstream when its body generator ended or was closed


def _chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"id": "chatcmpl-gated", "model": DEMO_MODEL, "choices": [
        {"index": 0, "delta": {"content": text}, "finish_reason": None}]}).encode() + b"\n\n"


async def _gated(request: Request) -> StreamingResponse:
    await request.body()

    async def body():
        try:
            yield _chunk("first ")
            for _ in range(2000):  # the second chunk waits until the client saw the first
                if RELEASE.is_set():
                    break
                await asyncio.sleep(0.01)
            yield _chunk("second ")
            yield b"data: [DONE]\n\n"
        finally:
            FINISHED.set()

    return StreamingResponse(body(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def gated_upstream():
    with serve(Starlette(routes=[Route("/v1/chat/completions", _gated, methods=["POST"])])) as u:
        yield u


@pytest.fixture
def node(start_node, gated_upstream):
    RELEASE.clear()
    FINISHED.clear()
    return start_node(gated_upstream)


def _stream(node):
    body = {"model": DEMO_MODEL, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    return httpx.stream("POST", f"{node.url}/v1/chat/completions", json=body, headers=node.auth,
                        timeout=10)


def test_each_chunk_reaches_the_client_before_the_upstream_sends_the_next(node):
    with _stream(node) as r:
        chunks = r.iter_raw()
        first = next(chunks)
        # Had the node buffered, the first chunk could not arrive before RELEASE.
        assert first == _chunk("first ")
        assert not RELEASE.is_set()
        RELEASE.set()
        rest = b"".join(chunks)
    assert rest == _chunk("second ") + b"data: [DONE]\n\n"
    sig = httpx.get(f"{node.url}/v1/signature/chatcmpl-gated", headers=node.auth)
    assert sig.status_code == 200


def test_stream_abandoned_by_the_client_is_not_signed_and_upstream_is_released(node):
    with _stream(node) as r:
        assert next(r.iter_raw()) == _chunk("first ")
    # The client hung up after the first chunk: the node hangs up on the upstream too (its
    # generator is closed long before it would give up waiting by itself, 20 s).
    assert FINISHED.wait(5)
    RELEASE.set()
    time.sleep(0.2)
    assert httpx.get(f"{node.url}/v1/receipts").json()["data"] == []
    sig = httpx.get(f"{node.url}/v1/signature/chatcmpl-gated", headers=node.auth)
    assert sig.status_code == 404
