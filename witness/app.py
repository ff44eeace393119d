"""The witness's HTTP API (c2sp.org/tlog-witness): submission and monitoring on one prefix.

* ``POST /add-checkpoint``: :meth:`Witness.add_checkpoint`.
* ``GET /<hex(sha256(origin))>/checkpoint``: the latest checkpoint this witness cosigned for
  that log, with its cosignature (the spec's monitoring retrieval; monitors compare it with
  the log's to detect a split view).  404 until it has cosigned one.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .protocol import Witness

# A checkpoint plus 63 proof lines and many cosignatures is well under this.
MAX_BODY = 64 * 1024


def create_app(witness: Witness) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse(f"request body over {MAX_BODY} bytes\n", 413)
        # fsync and the per-log lock block: keep them off the event loop
        reply = await run_in_threadpool(witness.add_checkpoint, body)
        return Response(reply.body, reply.status, media_type=reply.content_type)

    async def latest(request: Request) -> Response:
        note = await run_in_threadpool(witness.latest_note, request.path_params["origin_hash"])
        if note is None:
            return PlainTextResponse("no checkpoint cosigned for this log\n", 404)
        return Response(
            note, 200, media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/{origin_hash:str}/checkpoint", latest, methods=["GET"]),
        ]
    )
