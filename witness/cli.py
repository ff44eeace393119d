"""``teelog witness init|vkey|serve``: run a C2SP tlog-witness (c2sp.org/tlog-witness).

The data directory holds ``witness.key`` (the private cosigner key, mode 0600) and ``state/``
(the latest cosigned checkpoint per log, see :mod:`teelog.witness.state`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

KEY_FILE = "witness.key"


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog witness ...`` to the top-level parser."""
    w = sub.add_parser("witness", help="run a transparency-log witness (C2SP tlog-witness)")
    cmds = w.add_subparsers(dest="witness_command", metavar="COMMAND", required=True)

    p = cmds.add_parser("init", help="create the witness's Ed25519 key and print its vkey")
    p.add_argument("--data", required=True, type=Path, help="witness data directory")
    p.add_argument("--name", required=True, help="witness name, e.g. witness.example.org")
    p.set_defaults(func=cmd_init)

    p = cmds.add_parser("vkey", help="print the witness's verifier key (type 0x04)")
    p.add_argument("--data", required=True, type=Path, help="witness data directory")
    p.set_defaults(func=cmd_vkey)

    p = cmds.add_parser("serve", help="serve add-checkpoint and the latest cosigned checkpoints")
    p.add_argument("--data", required=True, type=Path, help="witness data directory")
    p.add_argument("--config", required=True, type=Path, help="witness.toml ([[logs]])")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="listen port (default 8090)")
    p.set_defaults(func=cmd_serve)


def _fail(msg: str, code: int = 1) -> int:
    print(f"teelog witness: {msg}", file=sys.stderr)
    return code


def load_signer(data: Path):  # noqa: ANN201 - lazy import keeps --help fast
    from .cosigner import CosignatureSigner

    return CosignatureSigner.from_skey((data / KEY_FILE).read_text(encoding="ascii"))


def cmd_init(args: argparse.Namespace) -> int:
    from teelog.log.note import NoteError

    from .cosigner import CosignatureSigner

    path = args.data / KEY_FILE
    try:
        signer = CosignatureSigner.generate(args.name)
    except NoteError as e:
        return _fail(str(e), 2)
    try:
        args.data.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _fail(f"{path} exists: this directory already has a witness key")
    except OSError as e:
        return _fail(f"cannot create {path}: {e}")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signer.skey + "\n")
        f.flush()
        os.fsync(f.fileno())
    print(signer.vkey)
    return 0


def cmd_vkey(args: argparse.Namespace) -> int:
    from teelog.log.note import NoteError

    try:
        print(load_signer(args.data).vkey)
    except (OSError, UnicodeDecodeError, NoteError) as e:
        return _fail(f"no usable witness key in {args.data}: {e}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from teelog.log.note import NoteError

    from .app import create_app
    from .config import WitnessConfigError, read_witness_config
    from .protocol import Witness

    try:
        signer = load_signer(args.data)
    except (OSError, UnicodeDecodeError, NoteError) as e:
        return _fail(f"no usable witness key in {args.data}: {e}", 2)
    try:
        logs = read_witness_config(args.config)
    except WitnessConfigError as e:
        return _fail(str(e), 2)
    witness = Witness(signer, logs, args.data)
    print(f"witness {signer.vkey} for {len(logs)} log(s) on {args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(witness), host=args.host, port=args.port, log_level="warning")
    return 0
