"""The log's static read API under ``/log/`` (c2sp.org/tlog-tiles), as a Flask blueprint.

``/log/checkpoint`` is the one mutable resource (cached for at most a few seconds); full tiles,
full entry bundles and blobs are immutable and cached for a year.  A partial tile or bundle
(``.p/<W>``) never changes either, but the log deletes it once the full tile supersedes it
(tlog-tiles lets it), so a cache may keep it only briefly.  Paths follow the tlog-tiles
grammar strictly; anything else under ``/log/`` is a 404 with a plain-text reason.
"""

from __future__ import annotations

import gzip

from flask import Blueprint, Response, request
from teelog.log import BlobError, Log, TileError

CHECKPOINT_MAX_AGE = 2  # seconds; tlog-tiles: no caching "beyond a few seconds"
IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL_MAX_AGE = 60  # seconds; a partial tile disappears once its full tile is published
PARTIAL = f"public, max-age={PARTIAL_MAX_AGE}"


def _not_found(reason: str) -> Response:
    return Response(f"404 not found: {reason}\n", 404, mimetype="text/plain")


def _immutable(data: bytes, *, compress: bool = False, cache: str = IMMUTABLE) -> Response:
    resp = Response(data, 200, mimetype="application/octet-stream")
    resp.headers["Cache-Control"] = cache
    if compress:
        resp.headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            resp.set_data(gzip.compress(data, compresslevel=6, mtime=0))
            resp.headers["Content-Encoding"] = "gzip"
    return resp


def log_blueprint(log: Log) -> Blueprint:
    """Serve ``log``'s checkpoint, tiles, entry bundles, vkey and blobs under ``/log``."""
    bp = Blueprint("log", __name__, url_prefix="/log")

    @bp.get("/checkpoint")
    def checkpoint() -> Response:
        try:
            note = (log.tiles_dir / "checkpoint").read_bytes()
        except FileNotFoundError:
            return _not_found("the log has not published a checkpoint")
        resp = Response(note, 200, content_type="text/plain; charset=utf-8")
        resp.headers["Cache-Control"] = f"public, max-age={CHECKPOINT_MAX_AGE}"
        return resp

    @bp.get("/vkey")
    def vkey() -> Response:
        resp = Response(log.vkey + "\n", 200, content_type="text/plain; charset=utf-8")
        resp.headers["Cache-Control"] = "public, max-age=3600"
        return resp

    @bp.get("/tile/<path:rest>")
    def tile(rest: str) -> Response:
        path = f"tile/{rest}"
        try:
            file = log.published_file(path)
        except TileError as e:
            return _not_found(str(e))
        cache = PARTIAL if ".p/" in path else IMMUTABLE
        return _immutable(
            file.read_bytes(), compress=path.startswith("tile/entries/"), cache=cache
        )

    @bp.get("/blob/<digest>")
    def blob(digest: str) -> Response:
        try:
            data = log.blobs.get(digest)
        except BlobError as e:
            return _not_found(str(e))
        return _immutable(data)

    @bp.get("/")
    @bp.get("/<path:rest>")
    def unknown(rest: str = "") -> Response:
        return _not_found(
            f"/log/{rest} is not a log resource (checkpoint, vkey, tile/<L>/<N>[.p/<W>], "
            "tile/entries/<N>[.p/<W>], blob/<sha256-hex>)"
        )

    return bp
