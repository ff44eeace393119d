"""The explorer's Flask application factory (the ``flaskr`` pattern: factory + blueprints).

``create_app(data_dir)`` opens the log in ``data_dir`` (``teelog.log.Log.open``), creates the
explorer's index tables beside the log's (``explorer.schema``), and registers the blueprints:

- ``pages``: the HTML explorer (``explorer.pages``),
- ``api``: JSON under ``/api/v1/`` (``explorer.api``),
- ``feeds``: Atom feeds of measurement changes (``explorer.feeds``),
- ``ops``: ``/metrics`` and ``/healthz`` (``explorer.ops``),
- ``log``: the C2SP static log endpoints under ``/log/`` (``explorer.log_routes``).

Every response carries a strict Content-Security-Policy (no inline script, no inline style, no
framing), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``: the log
holds attacker-chosen text (node names, compose files, event-log payloads) and the browser must
never execute any of it, even if escaping were to fail somewhere.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from .config import ExplorerConfig
from .indexer import Indexer
from .ratelimit import RateLimiter
from .state import Explorer, read_engine
from .store import Store

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Read-only, public data: any origin may read it (Datasette and CT log APIs do the same).
_CORS_PREFIXES = ("/api/", "/log/", "/feeds/")


def templates_dir() -> str:
    """The directory of the ``teelog.templates`` package (shipped as package data)."""
    return str(importlib.resources.files("teelog.templates"))


class IndexConverter(BaseConverter):
    """``<index:name>``: an entry index or tree size in a path. Anything but ASCII digits
    below 2^63 is a 400 that says so (Werkzeug's ``int`` converter takes Unicode digits, and a
    value beyond 64 bits reached the database as a 500)."""

    regex = "[^/]+"

    def to_python(self, value: str) -> int:
        from .store import PageError, parse_decimal

        try:
            return parse_decimal(value, "the index in the path")
        except PageError as exc:
            raise BadRequest(str(exc)) from None

    def to_url(self, value: Any) -> str:
        return str(int(value))


def create_app(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    config: dict[str, Any] | ExplorerConfig | None = None,
    log: Any = None,
) -> Flask:
    """Build the explorer for the log in ``data_dir`` (default: ``TEELOG_DATA``).

    ``config`` overrides settings from the environment (a dict of :class:`ExplorerConfig`
    fields, or a whole config). ``log`` reuses an already open ``teelog.log.Log`` (as
    ``teelog demo`` does, which also appends to it); by default the log is opened read-only
    in the sense that the explorer never appends.
    """
    if isinstance(config, ExplorerConfig):
        settings = config
    else:
        settings = ExplorerConfig.from_env(data_dir).with_overrides(config)
    if log is None:
        from teelog.log import Log

        log = Log.open(settings.data_dir, database_url=settings.database_url)

    app = Flask(
        "teelog.explorer",
        template_folder=templates_dir(),
        static_folder=str(Path(__file__).parent / "static"),
        static_url_path="/static",
    )
    app.url_map.converters["index"] = IndexConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.verify_max_bytes + 64 * 1024  # form overhead
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.jinja_env.autoescape = True
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    indexer = Indexer(log)
    state = Explorer(
        log=log,
        indexer=indexer,
        store=Store(read_engine(log.engine)),
        config=settings,
        verify_limiter=RateLimiter(settings.verify_rate, 60.0),
    )
    from .evidence import EvidenceCache
    from .verifying import CollateralPool

    state.collateral = CollateralPool(state)
    state.evidence = EvidenceCache()
    app.extensions["teelog"] = state

    from . import api, feeds, ops, pages
    from .log_routes import log_blueprint
    from .templating import register_filters

    register_filters(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(log_blueprint(log))

    @app.before_request
    def _catch_up() -> None:
        # Skipped for the static log: it is served from tiles, not from the index.
        if not request.path.startswith(("/log/", "/static/")):
            indexer.catch_up_if_due(settings.index_interval)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.method in ("GET", "HEAD", "OPTIONS") and request.path.startswith(_CORS_PREFIXES):
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        return ops.error_response(exc.code or 500, exc.description or exc.name)

    return app
