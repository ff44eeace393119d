"""``teelog log init|vkey|append|prove|verify``: operate and audit a transparency log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .location import StorageLocation


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog log ...`` to the top-level parser."""
    log = sub.add_parser("log", help="operate or audit the transparency log")
    cmds = log.add_subparsers(dest="log_command", metavar="COMMAND", required=True)

    p = cmds.add_parser("init", help="create a log and its Ed25519 signing key")
    _storage_options(p)
    p.add_argument("--origin", required=True, help="checkpoint origin, e.g. example.org/log")
    p.set_defaults(func=cmd_init)

    p = cmds.add_parser("vkey", help="print the log's verifier key")
    _storage_options(p)
    p.set_defaults(func=cmd_vkey)

    p = cmds.add_parser("append", help="append each file's bytes as one entry; print indexes")
    _storage_options(p)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_append)

    p = cmds.add_parser("prove", help="print a c2sp.org/tlog-proof@v1 for an entry")
    _storage_options(p)
    p.add_argument("--index", required=True, type=int, help="entry index")
    p.add_argument("--size", type=int, help="a signed tree size (default: the latest)")
    p.set_defaults(func=cmd_prove)

    p = cmds.add_parser(
        "verify",
        help="audit a served log: signature, root from tiles and bundles, consistency",
    )
    p.add_argument("--url", required=True, help="log prefix, e.g. http://127.0.0.1:8000/log")
    p.add_argument("--vkey", required=True, help="the log's verifier key, or a file holding it")
    p.add_argument("--state", type=Path, help="JSON file with the last verified state")
    p.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout (seconds)")
    p.set_defaults(func=cmd_verify)


def _storage_options(p: argparse.ArgumentParser) -> None:
    """``--data`` and ``--database``, resolved by :func:`_location` (see docs/config.md)."""
    p.add_argument(
        "--data", type=Path, metavar="DIR",
        help="data directory (default: $TEELOG_DATA, else $XDG_DATA_HOME/teelog)",
    )
    p.add_argument(
        "--database", metavar="URL",
        help="sqlite:///FILE or postgresql+psycopg://… (default: $TEELOG_DATABASE, else "
        "DIR/teelog.db)",
    )


def _location(args: argparse.Namespace) -> StorageLocation:
    """The :class:`~teelog.log.location.StorageLocation` named by the options and TEELOG_*;
    the resolved data directory is stored back in ``args.data``."""
    from .location import resolve_location

    loc = resolve_location(data=args.data, database=args.database)
    args.data = loc.data_dir
    return loc


def _fail(msg: str, code: int = 1) -> int:
    print(f"teelog log: {msg}", file=sys.stderr)
    return code


def cmd_init(args: argparse.Namespace) -> int:
    from .location import LocationError
    from .log import Log, LogError

    try:
        loc = _location(args)
        log = Log.create(loc.data_dir, args.origin, database_url=loc.database_url)
    except (LogError, LocationError) as e:
        return _fail(str(e))
    print(log.vkey)
    log.close()
    return 0


def cmd_vkey(args: argparse.Namespace) -> int:
    from .location import LocationError
    from .note import Ed25519Signer, NoteError

    try:
        _location(args)
    except LocationError as e:
        return _fail(str(e), 2)
    try:
        signer = Ed25519Signer.from_skey((args.data / "log.skey").read_text())
    except FileNotFoundError:
        return _fail(f"{args.data} holds no log (no log.skey)")
    except NoteError as e:
        return _fail(f"log.skey: {e}")
    print(signer.vkey)
    return 0


def cmd_append(args: argparse.Namespace) -> int:
    from .log import Log, LogError
    from .sequencer import LogStateError
    from .tiles import MAX_ENTRY_SIZE

    entries = []
    for path in args.files:
        try:
            entries.append(path.read_bytes())
        except OSError as e:
            return _fail(f"cannot read {path}: {e.strerror}")
    for path, entry in zip(args.files, entries, strict=True):
        if len(entry) > MAX_ENTRY_SIZE:
            return _fail(
                f"{path} is {len(entry)} bytes; an entry is at most {MAX_ENTRY_SIZE} bytes "
                "(nothing was appended)"
            )
    from .location import LocationError

    try:
        loc = _location(args)
        log = Log.open(loc.data_dir, database_url=loc.database_url)
    except (LogError, LogStateError, LocationError) as e:
        return _fail(str(e))
    try:
        for idx in log.append_many(entries):
            print(idx)
    finally:
        log.close()
    return 0


def cmd_prove(args: argparse.Namespace) -> int:
    from .location import LocationError
    from .log import Log, LogError
    from .merkle import ProofError
    from .sequencer import LogStateError

    try:
        loc = _location(args)
        log = Log.open(loc.data_dir, database_url=loc.database_url)
    except (LogError, LogStateError, LocationError) as e:
        return _fail(str(e))
    try:
        sys.stdout.write(log.tlog_proof(args.index, args.size))
    except (ProofError, IndexError) as e:
        return _fail(str(e))
    finally:
        log.close()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .audit import AuditError, AuditState, audit
    from .note import Ed25519Verifier, NoteError, parse_vkey
    from .served import HttpLog, SourceError

    vkey_text = args.vkey
    if Path(vkey_text).is_file():
        vkey_text = Path(vkey_text).read_text().strip()
    try:
        key = parse_vkey(vkey_text)
    except NoteError as e:
        return _fail(f"--vkey: {e}", 2)
    if not isinstance(key, Ed25519Verifier):
        return _fail("--vkey must be the log's Ed25519 (type 0x01) key", 2)
    served = HttpLog(args.url, timeout=args.timeout)  # follows no redirect
    try:
        state = AuditState.load(args.state) if args.state else None
        report, new_state = audit(served.get, key, state)
    except AuditError as e:
        return _fail(f"FAILED: {e}")
    except SourceError as e:
        return _fail(f"cannot reach the log at {args.url}: {e}")
    finally:
        served.close()
    for line in report.lines:
        print(line)
    if args.state:
        new_state.save(args.state)
        print(f"state saved to {args.state}")
    print("OK")
    return 0
