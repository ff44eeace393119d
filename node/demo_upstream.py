"""A DEMO upstream: a tiny OpenAI-compatible server that echoes the prompt. Not a model.

It serves ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions``,
streaming (SSE, ``data: {…}\\n\\n`` per chunk, then ``data: [DONE]\\n\\n``, as vLLM does) and
not, under the one model id :data:`DEMO_MODEL` (``teelog-demo-echo``), so nothing produced with
it can be mistaken for a real model's output. The node's tests, its benchmark and
``teelog demo`` put it behind the signing proxy.

Run alone: ``python -m teelog.node.demo_upstream --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

DEMO_MODEL = "teelog-demo-echo"
_DEFAULT_MAX_TOKENS = 16


def _json(obj: Any) -> bytes:
    # vLLM answers through Starlette's JSONResponse: compact separators, UTF-8, no ASCII escaping.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _error(status: int, message: str, type_: str = "invalid_request_error") -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": status}}
    return Response(_json(body), status_code=status, media_type="application/json")


def create_demo_upstream(*, chunk_delay: float = 0.0) -> Starlette:
    """The demo upstream app; ``chunk_delay`` seconds pass between two streamed chunks
    (0 streams as fast as possible)."""
    counter = itertools.count(1)

    async def models(request: Request) -> Response:
        return Response(
            _json({
                "object": "list",
                "data": [{
                    "id": DEMO_MODEL, "object": "model", "created": 0,
                    "owned_by": "teelog-demo", "root": DEMO_MODEL,
                }],
            }),
            media_type="application/json",
        )

    async def parse(request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        if body.get("model") != DEMO_MODEL:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        return body

    def words(text: str, max_tokens: int) -> list[str]:
        parts = text.split() or ["(empty)"]
        return [w + " " for w in parts[:max_tokens]]

    async def chat(request: Request) -> Response:
        body = await parse(request)
        if isinstance(body, Response):
            return body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty list")
        last = messages[-1].get("content", "") if isinstance(messages[-1], dict) else ""
        tokens = words(str(last), int(body.get("max_tokens") or _DEFAULT_MAX_TOKENS))
        cid = f"chatcmpl-demo-{next(counter)}-{time.time_ns()}"
        created = int(time.time())
        if body.get("stream"):
            return _stream(cid, created, tokens, chat=True, delay=chunk_delay)
        return Response(_json({
            "id": cid, "object": "chat.completion", "created": created, "model": DEMO_MODEL,
            "choices": [{
                "index": 0, "message": {"role": "assistant", "content": "".join(tokens)},
                "logprobs": None, "finish_reason": "stop",
            }],
            "usage": _usage(messages, tokens),
        }), media_type="application/json")

    async def completions(request: Request) -> Response:
        body = await parse(request)
        if isinstance(body, Response):
            return body
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        if not isinstance(prompt, str):
            return _error(400, "prompt must be a string or a list of strings")
        tokens = words(prompt, int(body.get("max_tokens") or _DEFAULT_MAX_TOKENS))
        cid = f"cmpl-demo-{next(counter)}-{time.time_ns()}"
        created = int(time.time())
        if body.get("stream"):
            return _stream(cid, created, tokens, chat=False, delay=chunk_delay)
        return Response(_json({
            "id": cid, "object": "text_completion", "created": created, "model": DEMO_MODEL,
            "choices": [{
                "index": 0, "text": "".join(tokens), "logprobs": None, "finish_reason": "stop",
            }],
            "usage": _usage([prompt], tokens),
        }), media_type="application/json")

    return Starlette(routes=[
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
    ])


def _usage(prompt: list[Any], tokens: list[str]) -> dict[str, int]:
    prompt_tokens = sum(len(str(p).split()) for p in prompt)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(tokens),
        "total_tokens": prompt_tokens + len(tokens),
    }


def _stream(
    cid: str, created: int, tokens: list[str], *, chat: bool, delay: float
) -> StreamingResponse:
    obj = "chat.completion.chunk" if chat else "text_completion"

    def chunk(piece: str | None, finish: str | None, first: bool = False) -> bytes:
        if chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if piece is not None:
                delta["content"] = piece
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish}
        else:
            choice = {"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish}
        payload = {"id": cid, "object": obj, "created": created, "model": DEMO_MODEL,
                   "choices": [choice]}
        return b"data: " + _json(payload) + b"\n\n"

    async def body() -> AsyncIterator[bytes]:
        if chat:
            yield chunk(None, None, first=True)
        for piece in tokens:
            if delay:
                await asyncio.sleep(delay)
            yield chunk(piece, None)
        yield chunk(None, "stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


def main(argv: list[str] | None = None) -> int:
    """Serve the demo upstream (``python -m teelog.node.demo_upstream``)."""
    import uvicorn

    parser = argparse.ArgumentParser(description="teelog DEMO upstream (echo; not a model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--chunk-delay", type=float, default=0.0,
                        help="seconds between streamed chunks")
    args = parser.parse_args(argv)
    uvicorn.run(create_demo_upstream(chunk_delay=args.chunk_delay), host=args.host,
                port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
