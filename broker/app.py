"""The broker's ASGI application (Starlette, as the node's): the three KBS routes.

=============================================  =====================================================
``POST /kbs/v0/auth``                          challenge; sets cookie ``kbs-session-id``
``POST /kbs/v0/attest``                        ``{"token"}``; cookie required
``GET /kbs/v0/resource/{repo}/{type}/{tag}``   flattened JWE; cookie or ``Authorization: Bearer``
=============================================  =====================================================

Errors are ``{"type", "detail"}`` with Trustee's codes (:mod:`teelog.broker.errors`); any
other path is 404 ``InvalidRequestPath``. Answers to ``/resource`` carry ``Teelog-Entry-Index``
(the decision's index in the log) and ``Teelog-Checkpoint-Size`` (the size of the signed
checkpoint that covers it), denials as well as releases. Handlers are synchronous, so
Starlette runs them in its thread pool and the log append may block.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import KbsError
from .protocol import TokenResponse
from .service import Broker, Denied
from .sessions import COOKIE

MAX_BODY = 8 * 2**20  # an 8-GPU evidence bundle is ~1 MB


def _error(exc: KbsError) -> JSONResponse:
    response = JSONResponse(exc.body(), status_code=exc.status_code)
    if isinstance(exc, Denied):
        response.headers["Teelog-Entry-Index"] = str(exc.entry_index)
        response.headers["Teelog-Checkpoint-Size"] = str(exc.checkpoint_size)
    return response


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise KbsError("SerdeError", f"request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(broker: Broker) -> Starlette:
    """The Starlette app serving ``broker``."""

    async def auth(request: Request) -> Response:
        try:
            session, challenge = broker.auth(await _body(request))
        except KbsError as exc:
            return _error(exc)
        response = JSONResponse(challenge.to_json())
        response.set_cookie(COOKIE, session.id, max_age=int(broker.sessions.ttl),
                            httponly=True, samesite="strict")
        return response

    async def attest(request: Request) -> Response:
        try:
            body = await _body(request)
            session, token = await run_in_threadpool(
                broker.attest, request.cookies.get(COOKIE), body
            )
        except KbsError as exc:
            return _error(exc)
        response = JSONResponse(TokenResponse(token).to_json())
        response.set_cookie(COOKIE, session.id, max_age=int(broker.sessions.ttl),
                            httponly=True, samesite="strict")
        return response

    async def resource(request: Request) -> Response:
        scope = request.scope
        try:
            release = await run_in_threadpool(
                broker.resource,
                scope.get("raw_path") or scope["path"].encode(),
                scope.get("query_string", b""),
                request.cookies.get(COOKIE),
                request.headers.get("authorization"),
            )
        except KbsError as exc:
            return _error(exc)
        return Response(
            release.body,
            media_type="application/json",
            headers={
                "Teelog-Entry-Index": str(release.entry_index),
                "Teelog-Checkpoint-Size": str(release.checkpoint_size),
            },
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(KbsError("InvalidRequestPath", f"no such endpoint: {request.url.path}"))

    routes = [
        Route("/kbs/v0/auth", auth, methods=["POST"]),
        Route("/kbs/v0/attest", attest, methods=["POST"]),
        # Any path below /resource/ reaches the handler, which checks the *raw* path itself,
        # so that traversal attempts are logged as denials rather than routed elsewhere.
        Route("/kbs/v0/resource/{rest:path}", resource, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    return app
