"""``teelog verify``: verify a downloaded report, bundle, raw quote or signature offline.

Exit status: 0 verified or warning, 1 failed or unverifiable, 2 unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .times import TimeFormatError, parse_time

EXIT_OK, EXIT_NOT_VERIFIED, EXIT_UNUSABLE = 0, 1, 2
_MARK = {"pass": "pass", "fail": "FAIL", "warn": "warn", "skip": "skip"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog verify`` to the top-level subcommands."""
    p = sub.add_parser(
        "verify",
        help="verify an attestation report, bundle, raw quote or signature offline",
        description=(
            "Verify a report or bundle (JSON), a raw TDX/SGX quote (binary, hex or base64), or a "
            "signature response (JSON with text and signature). Exit 0 for verified or warning, "
            "1 for failed or unverifiable, 2 for unusable input."
        ),
    )
    p.add_argument("file", metavar="FILE", help="report, bundle, quote or signature; - for stdin")
    p.add_argument(
        "--collateral",
        metavar="FILE",
        action="append",
        default=[],
        help="Intel collateral (QuoteCollateralV3 JSON); repeat for several, matched by FMSPC",
    )
    p.add_argument(
        "--at",
        metavar="TIME",
        help="verify as of TIME (RFC 3339, e.g. 2026-03-11T03:33:20Z, or Unix seconds); "
        "default: now",
    )
    p.add_argument("--nonce", metavar="HEX", help="the nonce you sent (64 hex characters)")
    p.add_argument("--rim", metavar="DIR", help="directory of NVIDIA RIM files for gpu.rim")
    p.add_argument("--jwks", metavar="FILE", help="NVIDIA JWKS snapshot to check --nras with")
    p.add_argument("--nras", metavar="FILE", help="a stored NRAS response for gpu.nras")
    p.add_argument("--request", metavar="FILE", help="request body bytes (signature input)")
    p.add_argument("--response", metavar="FILE", help="response body bytes (signature input)")
    p.add_argument(
        "--pccs",
        metavar="URL",
        help="fetch missing collateral from this PCCS/PCS (network), e.g. https://pccs.phala.network",
    )
    p.add_argument(
        "--collateral-cache", metavar="DIR", help="cache fetched collateral here, by FMSPC"
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.set_defaults(func=run_verify)


class _Unusable(Exception):
    """Input the command cannot use; the message is shown and the exit status is 2."""


def run_verify(args: argparse.Namespace) -> int:
    """Handler of ``teelog verify``."""
    from .errors import AttestationInputError

    try:
        result = _verify(args)
    except (_Unusable, AttestationInputError) as exc:
        print(f"teelog verify: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(result))
    return EXIT_OK if result.status in ("verified", "warning") else EXIT_NOT_VERIFIED


def _verify(args: argparse.Namespace) -> Any:
    from .collateral import Collateral
    from .receipt import verify_receipt
    from .report import verify_quote, verify_report
    from .verdict import Result

    data = _read(args.file)
    at = _at(args.at) if args.at else datetime.now(UTC)
    nonce = _nonce(args.nonce)
    doc = _json_object(data)
    if doc is not None and "text" in doc and "signature" in doc:
        request = _read(args.request) if args.request else None
        response = _read(args.response) if args.response else None
        return Result(attestations=[verify_receipt(doc, request=request, response=response)])
    if args.request or args.response:
        raise _Unusable("--request/--response apply to a signature response only")
    collateral = Collateral.from_files(
        args.collateral, pccs_url=args.pccs, cache_dir=args.collateral_cache
    )
    if doc is None:
        return verify_quote(data, at=at, collateral=collateral)
    if args.rim and not Path(args.rim).is_dir():
        raise _Unusable(f"--rim {args.rim}: not a directory")
    return verify_report(
        doc,
        nonce=nonce,
        at=at,
        collateral=collateral,
        rim_dir=args.rim,
        jwks=_read(args.jwks).decode("utf-8", "replace") if args.jwks else None,
        nras=_read(args.nras).decode("utf-8", "replace") if args.nras else None,
    )


def _at(text: str) -> datetime:
    """``--at``: RFC 3339 or Unix seconds (``attestation.times.parse_time``)."""
    try:
        return parse_time(text)
    except TimeFormatError as exc:
        raise _Unusable(f"--at: {exc}") from exc


def _nonce(text: str | None) -> bytes | None:
    if text is None:
        return None
    cleaned = text.strip().removeprefix("0x")
    try:
        value = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise _Unusable(f"--nonce {text!r}: not hex") from exc
    if len(value) != 32:
        raise _Unusable(f"--nonce: {len(value)} bytes, expected 32 (64 hex characters)")
    return value


def _read(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).read_bytes()
    except OSError as exc:
        raise _Unusable(f"{path}: {exc.strerror or exc}") from exc


def _json_object(data: bytes) -> dict[str, Any] | None:
    """The JSON object in ``data``; None when ``data`` is not JSON (then it is a quote)."""
    stripped = data.lstrip()
    if not stripped.startswith((b"{", b"[")):
        return None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Unusable(f"input looks like JSON but is not: {exc}") from exc
    if not isinstance(doc, dict):
        raise _Unusable("JSON input must be an object (a report, bundle or signature)")
    return doc


def _measured(m: dict[str, Any] | None) -> list[str]:
    """A few measured values, for people; the full set is in ``--json``."""
    if not m:
        return []
    out = []
    for key in ("mrtd", "compose_hash", "os_image_hash", "app_id", "tcb_status"):
        if m.get(key):
            out.append(f"{key}: {m[key]}")
    if m.get("advisory_ids"):
        out.append(f"advisories: {', '.join(m['advisory_ids'])}")
    groups: dict[tuple[Any, ...], int] = {}
    for gpu in m.get("gpus") or []:
        key = (gpu.get("arch"), gpu.get("driver_version"), gpu.get("vbios_version"))
        groups[key] = groups.get(key, 0) + 1
    for (arch, driver, vbios), count in groups.items():
        out.append(f"gpus: {count} x {arch or '?'}, driver {driver or '?'}, VBIOS {vbios or '?'}")
    return out


def render_table(result: Any, width: int | None = None) -> str:
    """The human-readable verdicts: one block per attestation, one row per check."""
    width = width or max(60, min(shutil.get_terminal_size((100, 20)).columns, 140))
    name_w = max([len(c.name) for v in result.attestations for c in v.checks] + [5])
    lines = [f"status: {result.status}"]
    for verdict in result.attestations:
        who = " ".join(
            x for x in (verdict.role, verdict.model or "", verdict.signing_address or "") if x
        )
        lines += ["", f"{who}: {verdict.status}"]
        indent = " " * (2 + name_w + 2 + 4 + 2)
        for check in verdict.checks:
            head = f"  {check.name:<{name_w}}  {_MARK[check.status]:<4}  "
            body = textwrap.wrap(check.detail, width=max(20, width - len(indent))) or [""]
            lines.append(head + body[0])
            lines += [indent + more for more in body[1:]]
        lines += [f"  {line}" for line in _measured(verdict.measurements)]
    for fmspc, raw in result.collateral_used.items():
        lines.append(f"collateral FMSPC {fmspc}: sha256 {hashlib.sha256(raw).hexdigest()}")
    for digest in result.collateral_cited:
        lines.append(f"collateral not valid at the verification time, not used: sha256 {digest}")
    return "\n".join(lines) + "\n"
