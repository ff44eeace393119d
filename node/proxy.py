"""Forwarding completions to the upstream and signing what the client receives.

The signed text hashes exactly the bytes received from the client and the bytes sent back
(docs/node.md "What is signed"): for a JSON reply the body is sent byte for byte as the upstream
produced it (never re-serialised); for a stream every upstream chunk is passed on as soon as it
arrives, and the response hash covers all SSE bytes, ``data: [DONE]`` included.

Receipt rules:
- A non-streaming reply is signed and journaled before any byte of it is sent.
- Stream chunks are passed on as they arrive, never waiting for more. Upstream chunks that
  have already arrived together (whole in the HTTP/1.1 receive buffer) go out in one write:
  the same bytes, fewer system calls, no waiting (:func:`_next_chunk_buffered`). A second
  task reading ahead is not used: when the client went away, such a task kept the upstream
  connection open until the upstream finished, so the GPU went on generating for nobody.
- A stream is signed when its ``data: [DONE]`` line has arrived and the upstream has closed the
  body cleanly; the chunk holding ``[DONE]`` (and anything after it) is sent only after the
  receipt is committed, so a client that has seen ``[DONE]`` can fetch the signature at once.
- Nothing that was not delivered whole gets a receipt: upstream refused, timed out, answered
  5xx or malformed JSON, or cut the stream; the client gets an OpenAI-shaped error instead (for a
  stream already under way, a final ``data: {"error": …}`` event, which OpenAI clients raise).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator

import anyio
import httpcore
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .errors import NodeError
from .notary import Notary
from .settings import NodeSettings
from .sse import SseTap
from .upstream import UPSTREAM_ERRORS, UpstreamClients

log = logging.getLogger("teelog.node.proxy")

# Upstream response headers passed on to the client. Hop-by-hop and length/encoding headers
# are the server's business (the node asks the upstream for identity encoding).
_FORWARDED_RESPONSE_HEADERS = ("content-type",)
_ERROR_BODY_LIMIT = 64 * 1024
# Chunks already received are merged into one write up to this size.
_MERGE_LIMIT = 64 * 1024
# What must be in h11's receive buffer, right after a chunk's data, for the next body event to
# come without reading the socket (RFC 9112 §7.1): the chunk's CRLF, a whole chunk-size line,
# and then one byte of data, or the last-chunk's size 0 with an empty trailer section.
_NEXT_CHUNK_READY = re.compile(rb"\r\n(?:0*[1-9A-Fa-f][0-9A-Fa-f]*[^\r\n]*\r\n.|0+\r\n\r\n)", re.S)


def upstream_base(url: str) -> str:
    """The upstream's origin + path prefix without a trailing ``/`` or ``/v1``."""
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


class Proxy:
    """The forwarding half of the node; one per app, sharing one upstream connection pool."""

    def __init__(
        self, settings: NodeSettings, notary: Notary, clients: UpstreamClients
    ) -> None:
        self.settings = settings
        self.notary = notary
        self.clients = clients
        headers = [(b"accept-encoding", b"identity")]
        if settings.upstream_token:
            headers.append((b"authorization", f"Bearer {settings.upstream_token}".encode()))
        self._headers = headers

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: the upstream's answer, unsigned (vllm-proxy does not sign it)."""
        try:
            resp = await self.clients.send(b"GET", "/v1/models", self._headers)
            try:
                content = await resp.aread()
            finally:
                await resp.aclose()
        except UPSTREAM_ERRORS as exc:
            return _upstream_failure(exc).response()
        if resp.status >= 500:
            return _upstream_status_error(resp.status, content).response()
        return _passthrough(resp, content)

    async def completion(self, request: Request, path: str) -> Response:
        """``POST /v1/chat/completions`` and ``/v1/completions``, streaming or not."""
        body = await self._read_body(request)
        request_sha256 = hashlib.sha256(body).hexdigest()
        headers = [
            *self._headers,
            (b"content-type", request.headers.get("content-type", "application/json").encode()),
        ]
        if "accept" in request.headers:
            headers.append((b"accept", request.headers["accept"].encode()))
        try:
            resp = await self._send(path, body, headers)
        except UPSTREAM_ERRORS as exc:
            return _upstream_failure(exc).response()
        forwarded = _forwarded_headers(resp)
        if resp.status == 200 and forwarded.get("content-type", "").startswith(
            "text/event-stream"
        ):
            return StreamingResponse(
                self._relay_stream(resp, request_sha256), status_code=200, headers=forwarded
            )
        try:
            content = await resp.aread()
        except UPSTREAM_ERRORS as exc:
            return _upstream_failure(exc).response()
        finally:
            await resp.aclose()
        if resp.status != 200:
            if resp.status >= 500:
                return _upstream_status_error(resp.status, content).response()
            # 4xx: the upstream's own verdict on the request (unknown model, bad parameters).
            return _passthrough(resp, content)
        return self._signed_json(resp, content, request_sha256)

    async def _send(
        self, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> httpcore.Response:
        """Send the request; retry once if the upstream dropped the connection before answering.

        A keep-alive connection the upstream closes just as the node reuses it fails with
        ``RemoteProtocolError`` before any response byte: the upstream never read the request,
        so sending it again on another connection is safe and invisible to the client.
        """
        for attempt in (1, 2):
            try:
                return await self.clients.send(b"POST", path, headers, body)
            except httpcore.RemoteProtocolError as exc:
                if attempt == 2:
                    raise
                log.info("upstream dropped a connection before answering (%s); retrying", exc)
        raise AssertionError("unreachable")

    def _signed_json(
        self, resp: httpcore.Response, content: bytes, request_sha256: str
    ) -> Response:
        try:
            data = json.loads(content)
        except ValueError:
            return NodeError(
                502, "the upstream returned malformed JSON; the response was not delivered",
                "upstream_error", code="upstream_malformed_json",
            ).response()
        chat_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(chat_id, str) or not chat_id:
            return NodeError(
                502, "the upstream response has no id, so the node cannot sign it",
                "upstream_error", code="upstream_missing_id",
            ).response()
        model = data.get("model")
        self.notary.record(
            chat_id=chat_id,
            model=model if isinstance(model, str) else None,
            request_sha256=request_sha256,
            response_sha256=hashlib.sha256(content).hexdigest(),
        )
        return _passthrough(resp, content)

    async def _relay_stream(
        self, resp: httpcore.Response, request_sha256: str
    ) -> AsyncIterator[bytes]:
        tap = SseTap()
        held: list[bytes] = []
        failure: NodeError | None = None
        pieces = resp.aiter_stream()
        h11_state = _h11_state(resp)
        try:
            async for chunk in pieces:
                late_error = None
                if h11_state is not None:
                    chunk, late_error = await _merge_buffered(chunk, pieces, h11_state)
                tap.feed(chunk)
                if tap.done:
                    held.append(chunk)  # released once the receipt is committed
                else:
                    yield chunk
                if late_error is not None:
                    raise late_error
        except UPSTREAM_ERRORS as exc:
            failure = _upstream_failure(exc, during_stream=True)
        finally:
            # When the client goes away Starlette cancels this generator, and anyio
            # cancellation is level-triggered: unshielded, the awaits below would be cancelled
            # too and the upstream would go on generating for nobody.
            with anyio.CancelScope(shield=True):
                await pieces.aclose()
                await resp.aclose()
        if failure is None and not tap.done:
            failure = NodeError(
                502, "the upstream closed the stream before data: [DONE]; "
                "the response is incomplete and was not signed",
                "upstream_error", code="upstream_stream_cut",
            )
        if failure is None and tap.id is None:
            failure = NodeError(
                502, "the upstream stream carried no completion id, so the node cannot sign it",
                "upstream_error", code="upstream_missing_id",
            )
        if failure is not None:
            log.warning("stream not signed: %s", failure.message)
            yield b"data: " + failure.to_bytes() + b"\n\n"
            return
        assert tap.id is not None
        self.notary.record(
            chat_id=tap.id,
            model=tap.model,
            request_sha256=request_sha256,
            response_sha256=tap.hexdigest(),
        )
        for chunk in held:
            yield chunk

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise NodeError(400, "Content-Length is not a number", code="bad_content_length")
            if int(declared) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)


def _h11_state(resp: httpcore.Response) -> object | None:
    """The h11 connection under an httpcore HTTP/1.1 response stream, or None.

    httpcore does not expose it; the attribute path is httpcore 1.0's (``PoolByteStream`` →
    ``HTTP11ConnectionByteStream`` → ``AsyncHTTP11Connection``). Anything else (another
    httpcore version, HTTP/2) gives None, and chunks are then sent one by one as before.
    """
    connection = getattr(getattr(resp.stream, "_stream", None), "_connection", None)
    state = getattr(connection, "_h11_state", None)
    return state if hasattr(state, "trailing_data") else None


async def _merge_buffered(
    chunk: bytes, pieces: AsyncIterator[bytes], h11_state: object
) -> tuple[bytes, Exception | None]:
    """``chunk`` plus the chunks after it that are already whole in h11's receive buffer,
    and the upstream error that stopped the merge, if any (to raise once the bytes merged
    so far are sent, as they would have been one by one).

    Only data that has arrived is taken: the next chunk is read only when the buffer holds it
    (:data:`_NEXT_CHUNK_READY`), so h11 produces it without a socket read and nothing waits.
    """
    merged = [chunk]
    size = len(chunk)
    error: Exception | None = None
    while size < _MERGE_LIMIT:
        buffered, _ = h11_state.trailing_data  # type: ignore[attr-defined]
        if not _NEXT_CHUNK_READY.match(buffered):
            break
        try:
            more = await pieces.__anext__()
        except StopAsyncIteration:
            break
        except UPSTREAM_ERRORS as exc:
            error = exc
            break
        merged.append(more)
        size += len(more)
    return (merged[0] if len(merged) == 1 else b"".join(merged)), error


def _too_large(limit: int) -> NodeError:
    return NodeError(
        413, f"request body larger than {limit} bytes", code="request_too_large"
    )


def _forwarded_headers(resp: httpcore.Response) -> dict[str, str]:
    out = {}
    for name, value in resp.headers:
        key = name.decode("latin-1").lower()
        if key in _FORWARDED_RESPONSE_HEADERS:
            out[key] = value.decode("latin-1")
    return out


def _passthrough(resp: httpcore.Response, content: bytes) -> Response:
    return Response(content, status_code=resp.status, headers=_forwarded_headers(resp))


def _upstream_failure(exc: Exception, *, during_stream: bool = False) -> NodeError:
    where = "while streaming the response" if during_stream else ""
    if isinstance(exc, httpcore.TimeoutException):
        return NodeError(
            504, f"the upstream timed out {where}".rstrip() + f" ({type(exc).__name__})",
            "upstream_error", code="upstream_timeout",
        )
    if isinstance(exc, httpcore.ConnectError):
        return NodeError(
            502, f"the upstream is unreachable: {exc}", "upstream_error",
            code="upstream_unreachable",
        )
    return NodeError(
        502, f"the upstream connection failed {where}".rstrip() + f": {type(exc).__name__}",
        "upstream_error", code="upstream_failed",
    )


def _upstream_status_error(status: int, content: bytes) -> NodeError:
    detail = content[:_ERROR_BODY_LIMIT].decode("utf-8", "replace").strip()
    message = f"the upstream answered HTTP {status}"
    if detail:
        message += f": {detail[:500]}"
    return NodeError(502, message, "upstream_error", code="upstream_http_error")
