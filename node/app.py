"""The node's ASGI application (Starlette): routes, authentication and wiring.

Routes (docs/node.md has the full contract):

=====================================  ======  ===================================================
``POST /v1/chat/completions``          token   proxied, streaming or not, signed (``proxy``)
``POST /v1/completions``               token   same
``GET /v1/models``                     open    the upstream's list, unsigned
``GET /v1/signature/{chat_id}``        token   ``{text, signature, signing_address, signing_algo}``
``GET /v1/attestation/report``         open    vllm-proxy report (``report``)
``GET /v1/receipts``                   open    the receipts feed (ours)
=====================================  ======  ===================================================

"token" routes need ``Authorization: Bearer <token>`` when the node has a token (vllm-proxy
``verify_authorization_header``); the report and the receipts feed are public so that anyone
(the collector, a client without a key) can check the node, as NEAR AI's gateway allows.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import NodeError
from .gpu import GpuEvidenceProvider
from .journal import Journal
from .keys import SigningKeys
from .notary import Notary
from .proxy import Proxy, upstream_base
from .quote import QuoteProvider
from .receipt import SIGNING_ALGOS, SigningAlgo
from .report import Attestor, parse_nonce
from .settings import NodeSettings
from .upstream import UpstreamClients

log = logging.getLogger("teelog.node")

FEED_DEFAULT_LIMIT = 100
FEED_MAX_LIMIT = 1000


def create_app(
    settings: NodeSettings,
    *,
    keys: SigningKeys,
    journal: Journal,
    quotes: QuoteProvider,
    gpus: GpuEvidenceProvider,
) -> Starlette:
    """The node app. It owns ``quotes``, ``gpus`` and the upstream clients (closed at
    shutdown); the caller owns ``journal``."""
    notary = Notary(keys, journal, cache_size=settings.signature_cache_size)
    attestor = Attestor(keys, quotes, gpus)
    state: dict[str, Proxy] = {}

    def check_token(request: Request) -> None:
        if settings.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NodeError(
                401, "Invalid or missing Authorization header", "authentication_error",
                code="invalid_api_key",
            )
        if not hmac.compare_digest(token.strip().encode(), settings.token.encode()):
            raise NodeError(401, "Invalid token", "authentication_error", code="invalid_api_key")

    async def chat_completions(request: Request) -> Response:
        check_token(request)
        return await state["proxy"].completion(request, "/v1/chat/completions")

    async def completions(request: Request) -> Response:
        check_token(request)
        return await state["proxy"].completion(request, "/v1/completions")

    async def models(request: Request) -> Response:
        return await state["proxy"].models(request)

    async def signature(request: Request) -> Response:
        check_token(request)
        algo = _signing_algo(request)
        chat_id = request.path_params["chat_id"]
        receipt = notary.lookup(chat_id)
        if receipt is None:
            raise NodeError(
                404, "Chat id not found or expired", "not_found", param="chat_id",
                code="unknown_chat_id",
            )
        return JSONResponse(receipt.signature_response(algo))

    async def attestation_report(request: Request) -> Response:
        algo = _signing_algo(request)
        raw_nonce = request.query_params.get("nonce")
        nonce = secrets.token_bytes(32) if raw_nonce is None else parse_nonce(raw_nonce)
        body = await attestor.report(nonce, algo, request.query_params.get("signing_address"))
        return JSONResponse(body)

    async def receipts(request: Request) -> Response:
        after = _int_param(request, "after", 0, minimum=0)
        limit = _int_param(request, "limit", FEED_DEFAULT_LIMIT, minimum=1)
        limit = min(limit, FEED_MAX_LIMIT)
        page, has_more = journal.page(after, limit)
        body: dict[str, Any] = {
            "object": "list",
            "node_instance": journal.instance_id,
            "data": [r.to_feed_json() for r in page],
            "next": page[-1].seq if page else after,
            "has_more": has_more,
        }
        return JSONResponse(body)

    async def root(request: Request) -> Response:
        return JSONResponse({})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        clients = UpstreamClients(settings, upstream_base(settings.upstream))
        state["proxy"] = Proxy(settings, notary, clients)
        log.info(
            "node up: upstream %s, quote provider %s, GPU evidence %s, ecdsa %s, ed25519 %s",
            settings.upstream, quotes.name, gpus.name, keys.ecdsa.address, keys.ed25519.address,
        )
        try:
            yield
        finally:
            await clients.aclose()
            await quotes.aclose()
            await gpus.aclose()

    async def node_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NodeError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return NodeError(exc.status_code, str(exc.detail), "invalid_request_error").response()

    routes = [
        Route("/", root, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/signature/{chat_id:path}", signature, methods=["GET"]),
        Route("/v1/attestation/report", attestation_report, methods=["GET"]),
        Route("/v1/receipts", receipts, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_MergeLeadingSlashes)],
        exception_handlers={NodeError: node_error, HTTPException: http_error},
    )


_MAX_INT64 = (1 << 63) - 1


class _MergeLeadingSlashes:
    """ASGI middleware: ``//v1/...`` is answered as ``/v1/...``.

    A published verifier joins a base URL ending in ``/`` with ``/v1/...``; only the leading
    slashes are merged, the rest of the path is left as sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("//"):
            scope = {**scope, "path": "/" + scope["path"].lstrip("/")}
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = b"/" + raw.lstrip(b"/")
        await self.app(scope, receive, send)


def _signing_algo(request: Request) -> SigningAlgo:
    algo = request.query_params.get("signing_algo", "ecdsa")
    if algo not in SIGNING_ALGOS:
        raise NodeError(
            400, "Invalid signing algorithm. Must be 'ed25519' or 'ecdsa'",
            "invalid_signing_algo", param="signing_algo", code="invalid_signing_algo",
        )
    return algo  # type: ignore[return-value]


def _int_param(request: Request, name: str, default: int, *, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    digits = raw.removeprefix("-")
    # ASCII digits only (int() would also take "١٢" or "1_000"), at most 64 bits, so that a
    # cursor is one SQLite/PostgreSQL BIGINT and never a 500.
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise NodeError(
            400, f"{name} must be a decimal integer (ASCII digits), got {raw[:40]!r}", param=name
        )
    value = int(raw)
    if value > _MAX_INT64:
        raise NodeError(400, f"{name} must be below 2^63, got {raw[:40]}", param=name)
    if value < minimum:
        raise NodeError(400, f"{name} must be at least {minimum}, got {value}", param=name)
    return value
