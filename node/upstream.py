"""The node's HTTP client to its upstream: httpcore connection pools, used in turn.

httpcore is httpx's own transport layer. The node calls it directly because it needs none of
what httpx's ``Client`` adds on top (URL and header models, cookies, auth, redirects, proxies
from the environment) and that layer cost about 40% of the client's CPU per streamed request
(0.86 vs 0.61 ms measured against the demo upstream). Going without it also means no cookie
jar shared between the node's clients and no ``HTTP_PROXY`` detour: the node talks to the
upstream it was given, directly.

Why several pools: httpcore 1.0's pool re-examines every connection each time a request is
queued or released (``AsyncConnectionPool._assign_requests_to_connections``, quadratic in the
number of open connections); at 64 concurrent streams one pool cost more CPU than everything
else the node does. Requests spread round-robin over ``shards`` pools keep each pool small;
connections are still kept alive and reused.

Idle connections are dropped after ``keepalive_expiry`` seconds, shorter than the 5 s after
which uvicorn (hence vLLM, ``VLLM_HTTP_TIMEOUT_KEEP_ALIVE``) closes them from its side, so the
node does not send a request down a connection the upstream is closing.
"""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import httpcore
import httpx

from .settings import NodeSettings

# Every failure httpcore reports for one request (httpcore/_exceptions.py).
UPSTREAM_ERRORS: tuple[type[Exception], ...] = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


class UpstreamClients:
    """``shards`` :class:`httpcore.AsyncConnectionPool` objects to one upstream origin."""

    def __init__(self, settings: NodeSettings, base: str, *, shards: int = 8) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        parts = urlsplit(base)
        self.base = base
        self._host = parts.netloc.rpartition("@")[2].encode("ascii")  # no userinfo in Host
        per_shard = max(1, settings.max_upstream_connections // shards)
        ssl_context = httpx.create_ssl_context()  # built once: loading CA certificates is slow
        self._pools = [
            httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=per_shard,
                max_keepalive_connections=per_shard,
                keepalive_expiry=settings.keepalive_expiry,
            )
            for _ in range(shards)
        ]
        self._turn = itertools.cycle(self._pools)
        self._timeouts = {
            "connect": settings.connect_timeout,
            "read": settings.read_timeout,
            "write": settings.read_timeout,
            "pool": settings.connect_timeout,
        }

    async def send(
        self, method: bytes, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> httpcore.Response:
        """Send one request on the next pool; the response body is left to stream
        (``aiter_stream``/``aread``, then ``aclose``). Raises one of :data:`UPSTREAM_ERRORS`."""
        framing = [(b"content-length", str(len(body)).encode())] if method != b"GET" else []
        request = httpcore.Request(
            method,
            self.base + path,
            headers=[(b"host", self._host), *framing, *headers],
            content=body,
            extensions={"timeout": self._timeouts},
        )
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
