"""The node's HTTP clients to its upstream: several small httpx pools used in turn.

Why several: httpcore 1.0's connection pool re-examines every connection of the pool each time
a request is queued or released (``AsyncConnectionPool._assign_requests_to_connections``,
quadratic in the number of open connections), which at 64 concurrent streams cost more CPU than
everything else the node does. Requests spread round-robin over ``shards`` pools keep each
pool small; connections are still kept alive and reused.

Idle connections are dropped after ``keepalive_expiry`` seconds, shorter than the 5 s after
which uvicorn (hence vLLM, ``VLLM_HTTP_TIMEOUT_KEEP_ALIVE``) closes them from its side, so the
node does not send a request down a connection the upstream is closing.

The clients keep no cookies (an httpx client stores ``Set-Cookie`` answers and would send them
with every later request, from any of the node's clients), and ignore ``HTTP_PROXY`` and
friends: the node talks to the upstream it was given, directly.
"""

from __future__ import annotations

import http.cookiejar
import itertools

import httpx

from .settings import NodeSettings


class UpstreamClients:
    """``shards`` :class:`httpx.AsyncClient` objects sharing the node's limits and timeouts."""

    def __init__(self, settings: NodeSettings, *, shards: int = 8) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        per_shard = max(1, settings.max_upstream_connections // shards)
        limits = httpx.Limits(
            max_connections=per_shard,
            max_keepalive_connections=per_shard,
            keepalive_expiry=settings.keepalive_expiry,
        )
        ssl_context = httpx.create_ssl_context()  # built once: loading CA certificates is slow
        timeout = httpx.Timeout(
            connect=settings.connect_timeout, read=settings.read_timeout,
            write=settings.read_timeout, pool=settings.connect_timeout,
        )
        self._clients = [
            httpx.AsyncClient(
                limits=limits, timeout=timeout, verify=ssl_context,
                cookies=_no_cookies(), trust_env=False,
            )
            for _ in range(shards)
        ]
        self._turn = itertools.cycle(self._clients)

    def next(self) -> httpx.AsyncClient:
        """The client for the next request."""
        return next(self._turn)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that accepts no cookie from any domain."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
