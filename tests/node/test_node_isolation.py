"""What the node sends upstream: the client's body, never its token or another client's state."""

from __future__ import annotations

import json

import httpx
import pytest
from asgi_server import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from teelog.node.demo_upstream import DEMO_MODEL


async def _echo_headers(request: Request) -> Response:
    body = await request.body()
    payload = {"id": "chatcmpl-echo", "model": DEMO_MODEL,
               "seen": {k: v for k, v in request.headers.items()}, "body": body.decode()}
    return Response(json.dumps(payload), media_type="application/json",
                    headers={"set-cookie": "session=upstream-secret; Path=/"})


@pytest.fixture(scope="module")
def echo_upstream():
    with serve(Starlette(routes=[Route("/v1/chat/completions", _echo_headers,
                                       methods=["POST"])])) as url:
        yield url


def _post(node, content: bytes):
    return httpx.post(f"{node.url}/v1/chat/completions", content=content,
                      headers={**node.auth, "content-type": "application/json"})


def test_upstream_gets_the_exact_body_but_not_the_client_token(start_node, echo_upstream):
    node = start_node(echo_upstream)
    body = b'{"model": "teelog-demo-echo",  "messages": []}'  # odd spacing kept as is
    seen = _post(node, body).json()
    assert seen["body"] == body.decode()
    assert "authorization" not in seen["seen"]
    assert seen["seen"]["accept-encoding"] == "identity"


def test_upstream_token_is_sent_when_configured(start_node, echo_upstream):
    node = start_node(echo_upstream, upstream_token="vllm-api-key")
    seen = _post(node, b"{}").json()
    assert seen["seen"]["authorization"] == "Bearer vllm-api-key"


def test_cookies_set_by_the_upstream_are_not_replayed_for_later_clients(
    start_node, echo_upstream
):
    node = start_node(echo_upstream)
    for _ in range(10):  # every pool of the node has answered at least once
        _post(node, b"{}")
    seen = _post(node, b"{}").json()
    assert "cookie" not in seen["seen"]
