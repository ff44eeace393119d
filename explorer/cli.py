"""``teelog serve``: run the explorer over a data directory.

By default the explorer runs under gunicorn (a pre-fork WSGI server: ``--workers N``
processes, each with its own app, log handle and background indexer; the index's cursor is
compare-and-swapped in the database, so concurrent indexers never write a batch twice).
``--dev`` keeps Werkzeug's threaded development server in this one process instead (quick to
start, reloads nothing, for local use and tests). The static log under ``/log/`` may equally
be served straight from the object store by a CDN or reverse proxy (docs/deploy.md); other
WSGI servers can load ``teelog.explorer.wsgi:app`` (configured by ``TEELOG_DATA``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog serve``."""
    p = sub.add_parser(
        "serve",
        help="run the explorer (pages, JSON API, feeds, static log) over a data directory",
        description="Serve the explorer for the log in DIR (TEELOG_DATA by default) under "
        "gunicorn, or under Werkzeug's development server with --dev.",
    )
    p.add_argument("--data", metavar="DIR", help="data directory (default: $TEELOG_DATA)")
    p.add_argument(
        "--database", metavar="URL",
        help="the log's database (default: $TEELOG_DATABASE, else DIR/teelog.db)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks one)")
    p.add_argument(
        "--workers",
        type=_positive,
        default=2,
        metavar="N",
        help="gunicorn worker processes (default 2; ignored with --dev)",
    )
    p.add_argument(
        "--dev",
        action="store_true",
        help="run Werkzeug's threaded development server in this process instead of gunicorn",
    )
    p.set_defaults(func=serve)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} workers: at least 1 is needed")
    return n


def _open_app(data: str | None) -> Any:
    """The explorer app for ``data``, or a one-line error (the exit status 2 cases)."""
    from teelog.log import LogError, LogStateError
    from teelog.log.location import LocationError

    from .app import create_app
    from .config import ConfigError

    try:
        return create_app(data)
    except (ConfigError, LocationError) as exc:
        return f"teelog serve: {exc}"
    except (LogError, LogStateError, OSError, ValueError) as exc:
        return f"teelog serve: cannot open the log: {exc}"


def serve(args: argparse.Namespace) -> int:
    """Check the log opens, catch the index up with it, then serve until interrupted."""
    if args.database is not None:
        from teelog.log.location import DATABASE_ENV, LocationError, check_database_url

        try:
            # through the environment, so that gunicorn's forked workers open the same database
            os.environ[DATABASE_ENV] = check_database_url(args.database, "--database")
        except LocationError as exc:
            print(f"teelog serve: {exc}", file=sys.stderr)
            return 2
    app = _open_app(args.data)
    if isinstance(app, str):
        print(app, file=sys.stderr)
        return 2
    state = app.extensions["teelog"]
    indexed = state.indexer.catch_up()
    if args.dev:
        return _serve_dev(app, args, indexed)
    # Workers are forked from this process: they must not share its database connections or
    # log handle, so each builds its own app (gunicorn's load() runs after the fork).
    state.log.close()
    state.store.engine.dispose()
    return _serve_gunicorn(args, indexed)


def _serve_dev(app: Any, args: argparse.Namespace, indexed: int) -> int:
    from werkzeug.serving import make_server

    from .indexer import start_background

    state = app.extensions["teelog"]
    stop = threading.Event()
    start_background(state.indexer, max(state.config.index_interval, 0.2), stop)
    server = make_server(args.host, args.port, app, threaded=True)
    host, port = server.server_address[:2]
    shown = _url(host, port)
    print(f"teelog explorer (dev server): {shown} ({indexed} entries indexed)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/"


def _serve_gunicorn(args: argparse.Namespace, indexed: int) -> int:
    import socket

    from gunicorn.app.base import BaseApplication

    # Bind here so that --port 0 is resolved (and printed) before the workers start;
    # gunicorn takes the listening socket over as ``fd://N``.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"teelog serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    sock.listen(2048)
    sock.set_inheritable(True)
    host, port = sock.getsockname()[:2]
    data = args.data

    class Explorer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", [f"fd://{sock.fileno()}"])
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)  # index page renders and blob reads wait on I/O
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("post_worker_init", _start_worker_indexer)

        def load(self) -> Any:
            app = _open_app(data)
            if isinstance(app, str):
                raise SystemExit(app)
            return app

    print(
        f"teelog explorer (gunicorn, {args.workers} workers): {_url(host, port)} "
        f"({indexed} entries indexed)",
        flush=True,
    )
    Explorer().run()
    return 0


def _start_worker_indexer(worker: Any) -> None:
    """gunicorn ``post_worker_init`` hook: this worker's background indexer."""
    from .indexer import start_background

    state = worker.wsgi.extensions["teelog"]
    start_background(state.indexer, max(state.config.index_interval, 0.2), threading.Event())
