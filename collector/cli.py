"""``teelog collect`` and ``teelog import`` (docs/collector.md)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``collect`` and ``import`` subcommands."""
    collect = sub.add_parser(
        "collect",
        help="poll nodes, verify their attestations and receipts, append them to the log",
        description="Poll the nodes of a TOML configuration on their schedules (see "
        "docs/collector.md); runs until interrupted.",
    )
    collect.add_argument("--config", required=True, type=Path, metavar="FILE")
    mode = collect.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="poll every node once, then exit")
    mode.add_argument(
        "--test-webhooks", action="store_true",
        help="send a signed test event to every webhook and report the answers",
    )
    mode.add_argument(
        "--check", action="store_true", help="only check the configuration and exit"
    )
    mode.add_argument(
        "--status", action="store_true",
        help="print each node's health, last attestation and receipts cursor, then exit",
    )
    collect.add_argument("-v", "--verbose", action="store_true")
    collect.set_defaults(func=collect_command)

    imp = sub.add_parser(
        "import",
        help="append recorded attestation reports to the log, as the collector would",
        description="Verify recorded /v1/attestation/report answers and append them as "
        'attestation entries with source "import".',
    )
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, metavar="FILE", help="collector configuration")
    where.add_argument("--data", type=Path, metavar="DIR", help="the log's data directory")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--node", help="node name for the entries (default: each file's stem)")
    imp.add_argument("--url", help="the URL the report was fetched from")
    imp.add_argument("--nonce", help="the nonce (64 hex) sent when the report was captured")
    imp.add_argument(
        "--observed-at", metavar="TIME", help="when it was captured (RFC 3339; default: now)"
    )
    imp.add_argument(
        "--at", metavar="TIME", help="verification time (RFC 3339; default: --observed-at)"
    )
    imp.add_argument(
        "--collateral", action="append", default=[], type=Path, metavar="FILE",
        help="Intel collateral JSON (QuoteCollateralV3); repeatable",
    )
    imp.add_argument("--json", action="store_true", help="print the results as JSON")
    imp.set_defaults(func=import_command)


def _config_or_exit(path: Path) -> Any:
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"teelog collect: {path}: {exc}", file=sys.stderr)
        return None


def collect_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = _config_or_exit(args.config)
    if config is None:
        return 2
    if args.check:
        print(f"{args.config}: {len(config.nodes)} nodes, {len(config.webhooks)} webhooks: OK")
        return 0
    if args.status:
        return print_status(config)
    from .scheduler import Collector

    try:
        collector = Collector(config)
    except (OSError, ValueError) as exc:
        print(f"teelog collect: {exc}", file=sys.stderr)
        return 1
    with collector:
        if args.test_webhooks:
            results = collector.outbox.send_test_event()
            if not results:
                print("no webhooks configured", file=sys.stderr)
                return 1
            for url, attempt in results.items():
                outcome = "ok" if attempt.ok else "FAILED"
                print(f"{url}: {outcome} {attempt.error or attempt.status_code}")
            return 0 if all(a.ok for a in results.values()) else 1
        if args.once:
            summary = collector.run_once()
            for o in summary.attestations:
                if o.error is None:
                    print(f"{o.node}: entry {o.index} {o.status}, {o.changes} changes")
            for r in summary.receipts:
                if r.error is None and not r.skipped:
                    print(f"{r.node}: {r.appended} receipts appended")
            for line in summary.errors:
                print(line, file=sys.stderr)
            return 1 if summary.errors else 0
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        collector.start()
        print(f"collecting from {len(config.nodes)} nodes into {config.data}; Ctrl-C stops")
        done.wait()
    return 0


def _when(moment: Any) -> str:
    from teelog.attestation.times import rfc3339

    return "-" if moment is None else rfc3339(moment)


def print_status(config: Any) -> int:
    """``teelog collect --status``: the state tables, one block per configured node."""
    from sqlmodel import Session

    from .models import CollectorNode, CollectorReceiptCursor, create_tables
    from .scheduler import open_log

    try:
        log = open_log(config.data, config.database)
    except (OSError, ValueError) as exc:
        print(f"teelog collect: cannot open the log in {config.data}: {exc}", file=sys.stderr)
        return 1
    create_tables(log.engine)
    with Session(log.engine) as session:
        for node in config.nodes:
            state = session.get(CollectorNode, node.name)
            cursor = session.get(CollectorReceiptCursor, node.name)
            print(f"{node.name}  {node.url}")
            if state is None:
                print("  never polled")
                continue
            print(f"  format {state.format or '-'}; polls {state.polls}; last success "
                  f"{_when(state.last_success_at)}; consecutive failures "
                  f"{state.consecutive_failures}; next attempt {_when(state.next_attempt_at)}")
            if state.last_error_kind:
                print(f"  last error ({state.last_error_kind}, {_when(state.last_error_at)}): "
                      f"{state.last_error}")
            if state.last_attestation_index is not None:
                print(f"  last attestation: entry {state.last_attestation_index}, "
                      f"{state.last_attestation_status}")
            if cursor is not None and cursor.node_instance is not None:
                print(f"  receipts: {cursor.receipts} logged, journal {cursor.node_instance} "
                      f"up to seq {cursor.last_seq}, {cursor.missing} missing"
                      + (f"; last error ({cursor.last_error_kind}): {cursor.last_error}"
                         if cursor.consecutive_failures else ""))
    return 0


_HEX64 = re.compile(r"\A[0-9a-fA-F]{64}\Z")


def import_command(args: argparse.Namespace) -> int:
    from teelog.attestation.collateral import Collateral
    from teelog.attestation.errors import CollateralError
    from teelog.attestation.times import parse_time

    from .importer import ReportFileError, import_reports
    from .models import create_tables
    from .poll import Recorder, system_clock
    from .scheduler import open_log
    from .verification import report_verifier
    from .webhooks import WebhookOutbox

    def fail(message: str, code: int = 2) -> int:
        print(f"teelog import: {message}", file=sys.stderr)
        return code

    try:
        observed = parse_time(args.observed_at) if args.observed_at else system_clock()
    except ValueError:
        return fail(f"--observed-at {args.observed_at!r}: not an RFC 3339 time or Unix seconds")
    try:
        at = parse_time(args.at) if args.at else observed
    except ValueError:
        return fail(f"--at {args.at!r}: not an RFC 3339 time or Unix seconds")
    if args.nonce is not None and not _HEX64.match(args.nonce):
        return fail("--nonce: expected 64 hex digits")
    hooks: tuple = ()
    files = list(args.collateral)
    pccs_url = cache_dir = None
    if args.config is not None:
        config = _config_or_exit(args.config)
        if config is None:
            return 2
        data, hooks = config.data, config.webhooks
        files = [*config.collateral.files, *files]
        pccs_url, cache_dir = config.collateral.pccs_url, config.collateral.cache_dir
    else:
        data = args.data
    try:
        collateral = Collateral.from_files(files, pccs_url=pccs_url, cache_dir=cache_dir)
    except CollateralError as exc:
        return fail(f"--collateral: {exc}")
    try:
        log = open_log(data)
    except (OSError, ValueError) as exc:
        return fail(f"cannot open the log in {data}: {exc}", 1)
    create_tables(log.engine)
    outbox = WebhookOutbox(log.engine, hooks, clock=system_clock)
    recorder = Recorder(log, report_verifier(collateral), outbox)
    try:
        imported = import_reports(
            recorder, args.files, observed_at=observed, at=at, node=args.node,
            url=args.url, nonce=args.nonce,
        )
    except ReportFileError as exc:
        return fail(str(exc))
    if hooks:
        outbox.deliver_due()
    if args.json:
        print(json.dumps([
            {"file": str(i.path), "node": i.node, "format": i.format, "index": i.recorded.index,
             "status": i.recorded.status, "changes": len(i.recorded.changes)}
            for i in imported
        ], indent=2))
    else:
        for i in imported:
            print(f"{i.path}: entry {i.recorded.index} ({i.format}, node {i.node}): "
                  f"{i.recorded.status}")
    return 0
