"""The ``teelog`` command: one console script whose subcommands live beside their code.

Each package contributes its subcommands through a ``register(subparsers)`` function in its
own ``cli`` module; a handler receives the parsed arguments and returns the exit code.
Heavy imports happen inside handlers so that ``teelog --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Sequence

from teelog import __version__

# Order is the order of ``teelog --help``: the main job first, then the parts.
_COMMAND_MODULES = (
    "teelog.demo",  # demo: the main job
    "teelog.explorer.cli",  # serve
    "teelog.monitor.cli",  # monitor
    "teelog.log.cli",  # log init|vkey|append|prove|verify
    "teelog.verify_cli",  # verify
    "teelog.node.cli",  # node
    "teelog.collector.cli",  # collect, import
    "teelog.models.cli",  # model encrypt|decrypt|verify
    "teelog.broker.cli",  # broker
    "teelog.witness.cli",  # witness init|vkey|serve
)

# Subcommands added to another package's group: (group, module, function). ``model fetch`` is
# the node's (it needs quote providers), while ``teelog.models`` imports nothing of ours.
_GROUP_EXTENSIONS = (("model", "teelog.node.cli", "register_model_fetch"),)


# The exit status of every command, shown at the end of its --help (issue 9 §6). argparse
# itself exits 2 on unusable arguments, so 2 means "unusable input" everywhere.
USAGE = (2, "unusable arguments or input (the message says which)")
EXIT_STATUS: dict[str, tuple[tuple[int, str], ...]] = {
    "teelog": ((0, "success; each command's --help lists its own exit status"), USAGE),
    "demo": ((0, "stopped: --duration reached or interrupted"), USAGE),
    "serve": ((0, "stopped"), (2, "unusable arguments, configuration or log in --data")),
    "monitor": (
        (0, "the log verified; no alert was raised or sent"),
        (
            1,
            "an alert was raised or sent (fork, rollback, bad checkpoint, verdict mismatch, "
            "measurement change, release outside the --expect file), an alert is still "
            "undelivered, or the log could not be read",
        ),
        (
            2,
            "unusable arguments or state file (bad vkey, malformed --expect file, state of "
            "another key, damaged)",
        ),
    ),
    "log": ((0, "the subcommand succeeded"), (1, "it failed (see its --help)"), USAGE),
    "log init": ((0, "log created, vkey printed"), (1, "a log exists or cannot be made"), USAGE),
    "log vkey": ((0, "vkey printed"), (1, "no readable log in --data"), USAGE),
    "log append": ((0, "every entry appended"), (1, "a file or the log could not be used"), USAGE),
    "log prove": ((0, "proof printed"), (1, "no such entry or size, or no log"), USAGE),
    "log verify": (
        (0, "every check passed (OK)"),
        (1, "a check failed (FAILED: …) or the log could not be reached"),
        (2, "unusable arguments or --vkey"),
    ),
    "verify": (
        (0, "verified or warning"),
        (1, "failed or unverifiable"),
        (2, "unusable input: not a report, quote or signature teelog can read, bad option"),
    ),
    "node": (
        (0, "stopped"),
        (1, "could not start: dstack key derivation or the GPU evidence provider failed"),
        (2, "unusable settings"),
    ),
    "collect": (
        (0, "done: config valid (--check), status printed (--status), every poll of --once "
         "succeeded, every test webhook delivered (--test-webhooks), or stopped"),
        (1, "a poll of --once or a test webhook failed, or the log or state cannot be opened"),
        (2, "unusable arguments or configuration"),
    ),
    "import": (
        (0, "every report appended"),
        (1, "the log could not be opened"),
        (2, "unusable input: a time, nonce, collateral or report file"),
    ),
    "model": ((0, "the subcommand succeeded"), (1, "a check failed (see its --help)"), USAGE),
    "model encrypt": (
        (0, "encrypted"),
        (1, "a check failed"),
        (2, "unusable input (arguments, a key file that is not 32 bytes, an existing file)"),
    ),
    "model decrypt": (
        (0, "decrypted and verified"),
        (1, "a check failed (a tag, digest, size, missing file or wrong key); nothing written"),
        (2, "unusable input (arguments, key file, manifest, a non-empty OUT_DIR)"),
    ),
    "model verify": (
        (0, "verified"),
        (1, "a check failed (a signature, digest, size, missing or unlisted file)"),
        (2, "unusable input (arguments, a missing or malformed manifest)"),
    ),
    "model fetch": (
        (0, "the key was released, the model decrypted into --out and measured where possible"),
        (1, "the broker refused, or the JWE, the signature, the decryption or the measurement "
         "failed; nothing was left in --out"),
        (2, "unusable input (arguments, a missing manifest, a non-empty --out, no TEE found)"),
    ),
    "broker": (
        (0, "stopped"),
        (2, "unusable configuration, key file, policy or log (the message names the key)"),
    ),
    "witness": ((0, "the subcommand succeeded"), (1, "it failed (see its --help)"), USAGE),
    "witness init": ((0, "key created, vkey printed"), (1, "a key exists or is unwritable"), USAGE),
    "witness vkey": ((0, "vkey printed"), (1, "no usable witness key in --data"), USAGE),
    "witness serve": ((0, "stopped"), (2, "unusable key, witness.toml or arguments")),
}


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping each line of a text by itself, so that the exit-status
    list keeps one line per status (descriptions are single lines and wrap as before)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for line in text.splitlines():
            if line.startswith("  "):  # "  <code>  <meaning>": hang the meaning under itself
                out.append(
                    textwrap.fill(
                        line.strip(),
                        width,
                        initial_indent=indent + "  ",
                        subsequent_indent=indent + "     ",
                    )
                )
            else:
                out.append(super()._fill_text(line, width, indent))
        return "\n".join(out)


def exit_status_text(command: str) -> str:
    """The ``exit status:`` epilog of ``command`` (a key of :data:`EXIT_STATUS`)."""
    lines = [f"  {code}  {meaning}" for code, meaning in EXIT_STATUS[command]]
    return "exit status:\n" + "\n".join(lines)


def _document_exits(parser: argparse.ArgumentParser, command: str) -> None:
    """Set the exit-status epilog of ``parser`` and, recursively, of its subcommands."""
    parser.formatter_class = _HelpFormatter
    parser.epilog = exit_status_text(command)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _document_exits(child, name if command == "teelog" else f"{command} {name}")


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The subcommand action of a command group (``teelog model``'s ``COMMAND``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise ValueError(f"{parser.prog} has no subcommands")


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
    for group, module, function in _GROUP_EXTENSIONS:
        getattr(importlib.import_module(module), function)(_subcommands(sub.choices[group]))
    _document_exits(parser, "teelog")
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
