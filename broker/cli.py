"""``teelog broker --config broker.toml [--host H] [--port P]``: serve the key broker."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog broker`` to the top-level subcommands."""
    p = sub.add_parser(
        "broker",
        help="serve the attested key broker (Trustee KBS protocol), every decision logged",
        description="Serve the key broker of broker.toml (docs/broker.md). Exit 2 for an "
        "unusable configuration or log.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="broker.toml")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    p.set_defaults(func=run_broker)


def run_broker(args: argparse.Namespace) -> int:
    """Handler of ``teelog broker``."""
    import uvicorn
    from teelog.attestation import CollateralError
    from teelog.entries.encoding import EntryTooLarge
    from teelog.log import Log, LogError, LogStateError

    from .app import create_app
    from .config import ConfigError, load_config
    from .service import Broker

    try:
        config = load_config(args.config)
        log = Log.open(config.data, database_url=config.database)
        broker = Broker(config, log)
        broker.publish_policies()  # a policy change is itself on the log, before any release
    except (ConfigError, CollateralError, LogError, LogStateError, EntryTooLarge) as exc:
        print(f"teelog broker: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(broker), host=args.host, port=args.port, log_level="info")
    return 0
