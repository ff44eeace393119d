"""``teelog serve``: run the explorer over a data directory.

The server is Werkzeug's threaded WSGI server (``werkzeug.serving.make_server`` with
``threaded=True``: one thread per connection, HTTP/1.1 keep-alive). That is enough for the
explorer: every request is a few indexed lookups (milliseconds, see docs/PERFORMANCE.md),
the static log under ``/log/`` is meant to be served by a CDN or any static file server in
production, and replicas scale out behind a load balancer (docs/explorer.md). It adds no
dependency; to run under another WSGI server, point it at ``teelog.explorer.wsgi:app``
(configured by ``TEELOG_DATA``).
"""

from __future__ import annotations

import argparse
import sys
import threading


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog serve``."""
    p = sub.add_parser(
        "serve",
        help="run the explorer (pages, JSON API, feeds, static log) over a data directory",
        description="Serve the explorer for the log in DIR (TEELOG_DATA by default).",
    )
    p.add_argument("--data", metavar="DIR", help="data directory (default: $TEELOG_DATA)")
    p.add_argument(
        "--database", metavar="URL",
        help="the log's database (default: $TEELOG_DATABASE, else DIR/teelog.db)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks one)")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Build the app, catch the index up with the log, then serve until interrupted."""
    from teelog.log import LogError, LogStateError
    from teelog.log.location import LocationError, check_database_url
    from werkzeug.serving import make_server

    from .app import create_app
    from .config import ConfigError
    from .indexer import start_background

    try:
        overrides = None
        if args.database is not None:
            overrides = {"database_url": check_database_url(args.database, "--database")}
        app = create_app(args.data, config=overrides)
    except (ConfigError, LocationError) as exc:
        print(f"teelog serve: {exc}", file=sys.stderr)
        return 2
    except (LogError, LogStateError, OSError, ValueError) as exc:
        print(f"teelog serve: cannot open the log: {exc}", file=sys.stderr)
        return 2
    state = app.extensions["teelog"]
    indexed = state.indexer.catch_up()
    stop = threading.Event()
    start_background(state.indexer, max(state.config.index_interval, 0.2), stop)
    server = make_server(args.host, args.port, app, threaded=True)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    print(f"teelog explorer: http://{shown}:{port}/ ({indexed} entries indexed)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0
