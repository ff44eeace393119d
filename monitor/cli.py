"""``teelog monitor``: the command line of :mod:`teelog.monitor.follow` (docs/monitor.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from teelog.attestation.times import duration_option


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog monitor`` to the ``teelog`` command."""
    p = sub.add_parser(
        "monitor",
        help="follow a served log: verify checkpoints and entries, alert on changes and forks",
        description=(
            "Follow a teelog log served over HTTP (the explorer's /log/ prefix). Verify each new "
            "checkpoint's signature and its consistency with the last verified one, read every "
            "new entry, re-verify attestation verdicts offline, and alert once per event: "
            "measurement changes of the watched nodes, verdict mismatches, releases of a "
            "model's key outside its owner's expectations (--model, --expect), and any "
            "inconsistency of the log (both checkpoints are kept as evidence)."
        ),
    )
    p.add_argument("--url", required=True, help="the log's read prefix, e.g. https://host/log/")
    p.add_argument(
        "--vkey",
        required=True,
        help="the log's verifier key (name+keyid+base64), or a file holding it (FILE or @FILE)",
    )
    p.add_argument(
        "--state",
        type=Path,
        default=Path("teelog-monitor.json"),
        help="state file (default: ./teelog-monitor.json); evidence goes to FILE.evidence/",
    )
    p.add_argument(
        "--node",
        action="append",
        default=None,
        metavar="NAME",
        help="alert on measurement changes of this node (repeatable; default: every node)",
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="check the key broker's releases of this model against --expect (with --expect)",
    )
    p.add_argument(
        "--expect",
        type=Path,
        metavar="FILE",
        help="the model owner's expectations (JSON: expected measurements as a release policy, "
        "published policy digests; docs/monitor.md); alerts on releases outside them",
    )
    sink = p.add_mutually_exclusive_group()
    sink.add_argument("--webhook", metavar="URL", help="POST each alert as JSON to URL")
    sink.add_argument(
        "--exec", dest="exec_cmd", metavar="CMD", help="run CMD per alert, JSON on stdin"
    )
    p.add_argument("--once", action="store_true", help="poll once and exit (status 1 on failure)")
    p.add_argument(
        "--interval",
        type=duration_option,
        default=10.0,
        metavar="DURATION",
        help="poll period: 30s, 5m, 1h or plain seconds (default 10s)",
    )
    p.add_argument(
        "--witness-policy",
        type=Path,
        metavar="FILE",
        help="witness policy (Sigsum format, C2SP vkeys): compare the log's checkpoint with "
        "each witness's latest view and alert on a split view (log.split_view)",
    )
    p.add_argument(
        "--no-reverify",
        action="store_true",
        help="do not re-verify attestation verdicts (checkpoints, entries and changes only)",
    )
    p.set_defaults(func=run_monitor)


def _read_vkey(value: str) -> str:
    """The vkey itself, or read from ``@FILE`` or an existing file (as ``teelog log verify``)."""
    if value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8").strip()
    if "+" not in value and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8").strip()
    return value.strip()


def run_monitor(args: argparse.Namespace) -> int:
    """Handler of ``teelog monitor``; exit 2 on unusable arguments or state."""
    import logging

    from teelog.log.served import HttpLog

    from .alerts import AlertSink, ExecSink, StreamSink, WebhookSink
    from .follow import Monitor, MonitorError, reverify_with_teelog
    from .releases import Expectations, ExpectError, load_expect

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        vkey = _read_vkey(args.vkey)
    except OSError as exc:
        print(f"teelog monitor: --vkey: {exc}", file=sys.stderr)
        return 2
    if (args.model is None) != (args.expect is None):
        print("teelog monitor: --model and --expect go together", file=sys.stderr)
        return 2
    releases: Expectations | None = None
    if args.expect is not None:
        try:
            releases = load_expect(args.expect, args.model)
        except ExpectError as exc:
            print(f"teelog monitor: --expect {args.expect}: {exc}", file=sys.stderr)
            return 2
    witness_policy = None
    if args.witness_policy is not None:
        from teelog.log.policy import PolicyError, read_policy

        try:
            witness_policy = read_policy(args.witness_policy)
        except PolicyError as exc:
            print(f"teelog monitor: --witness-policy: {exc}", file=sys.stderr)
            return 2
    sink: AlertSink
    if args.webhook:
        sink = WebhookSink(args.webhook)
    elif args.exec_cmd:
        sink = ExecSink(args.exec_cmd)
    else:
        sink = StreamSink(sys.stdout)
    source = HttpLog(args.url)
    try:
        monitor = Monitor(
            source,
            vkey,
            args.state,
            sink,
            nodes=args.node,
            reverify=None if args.no_reverify else reverify_with_teelog,
            releases=releases,
            witness_policy=witness_policy,
        )
    except MonitorError as exc:
        print(f"teelog monitor: {exc}", file=sys.stderr)
        return 2
    try:
        return monitor.run(args.interval, once=args.once)
    except KeyboardInterrupt:
        return 0
    finally:
        source.close()
