"""The ``teelog`` command: one console script whose subcommands live beside their code.

Each package contributes its subcommands through a ``register(subparsers)`` function in its
own ``cli`` module; a handler receives the parsed arguments and returns the exit code.
Heavy imports happen inside handlers so that ``teelog --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from teelog import __version__

# Order is the order of ``teelog --help``: the main job first, then the parts.
_COMMAND_MODULES = (
    "teelog.demo",  # demo: the main job
    "teelog.explorer.cli",  # serve, monitor
    "teelog.log.cli",  # log init|vkey|append|prove|verify
    "teelog.attestation.cli",  # verify
    "teelog.node.cli",  # node
    "teelog.collector.cli",  # collect, import
    "teelog.models.cli",  # model encrypt|decrypt|verify
    "teelog.broker.cli",  # broker
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every package's subcommands registered."""
    parser = argparse.ArgumentParser(
        prog="teelog",
        description="Attestation explorer and transparency log for confidential LLM inference.",
    )
    parser.add_argument("--version", action="version", version=f"teelog {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``teelog``; return the process exit code (2 for unusable input, as argparse does)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
