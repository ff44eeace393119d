"""``teelog verify``: verify offline what a node or the explorer hands out.

Inputs (recognised by ``teelog.attestation.inputs.detect_input_kind``, the one detection the
web verify page, the importer and the collector use too): a report or bundle, a raw TDX/SGX
quote, a signature response or receipt entry, a bare NVIDIA ``nvidia_payload``, and what the
explorer gives for a logged receipt: the ``GET /api/v1/receipts`` answer (``entry_b64`` and
``tlog_proof``) or a ``c2sp.org/tlog-proof@v1`` file with the entry (``--entry``).

This module is the command's orchestration and lives in the ``teelog`` package because a
tlog-proof needs both halves: ``teelog.log`` checks the proof and the checkpoint signature
(RFC 9162 §2.1.3, C2SP tlog-proof, signed-note), ``teelog.attestation`` the receipt's
signatures and the vouching attestation; neither of those imports the other.

Exit status: 0 verified or warning, 1 failed or unverifiable, 2 unusable input (one line on
standard error, never a traceback).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import shutil
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_NOT_VERIFIED, EXIT_UNUSABLE = 0, 1, 2
_MARK = {"pass": "pass", "fail": "FAIL", "warn": "warn", "skip": "skip"}
_VOUCHING = ("verified", "warning")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog verify`` to the top-level subcommands."""
    p = sub.add_parser(
        "verify",
        help="verify a report, bundle, quote, receipt, tlog-proof or GPU payload offline",
        description=(
            "Verify a report or bundle (JSON), a raw TDX/SGX quote (binary, hex or base64), a "
            "signature response or receipt entry (JSON), a bare NVIDIA nvidia_payload (JSON), "
            "or a logged receipt: the explorer's /api/v1/receipts answer (entry_b64 and "
            "tlog_proof) or a c2sp.org/tlog-proof@v1 file with --entry, checked with --vkey."
        ),
        epilog=(
            "exit status: 0 verified or warning, 1 failed or unverifiable, "
            "2 unusable input (one line on standard error)"
        ),
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="report, bundle, quote, receipt, proof or GPU payload; - for stdin",
    )
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
    p.add_argument(
        "--nonce", metavar="HEX", help="the nonce you sent (64 hex characters); for a bare GPU "
        "payload, the nonce its evidence must carry"
    )
    p.add_argument("--rim", metavar="DIR", help="directory of NVIDIA RIM files for gpu.rim")
    p.add_argument("--jwks", metavar="FILE", help="NVIDIA JWKS snapshot to check --nras with")
    p.add_argument("--nras", metavar="FILE", help="a stored NRAS response for gpu.nras")
    p.add_argument("--request", metavar="FILE", help="request body bytes (signature input)")
    p.add_argument("--response", metavar="FILE", help="response body bytes (signature input)")
    p.add_argument(
        "--vkey",
        metavar="KEY",
        help="the log's verifier key (or a file holding it): checks a tlog-proof offline",
    )
    p.add_argument(
        "--entry", metavar="FILE", help="the entry's exact bytes, for a tlog-proof file"
    )
    p.add_argument(
        "--witness-policy",
        metavar="FILE",
        help="witness policy (Sigsum format, C2SP vkeys): the tlog-proof's checkpoint must carry "
        "a quorum of cosignatures (log.witnessed)",
    )
    p.add_argument(
        "--attestation",
        metavar="FILE",
        help="the attestation vouching for a receipt's signer: a report or bundle (verified "
        "again, as of --at) or the attestation entry (its /api/v1/entries answer, or with a "
        "tlog_proof checked with --vkey); enables receipt.signer",
    )
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
    from teelog.attestation.errors import AttestationInputError

    try:
        result = _verify(args)
    except (_Unusable, AttestationInputError) as exc:
        print(f"teelog verify: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(result))
    return EXIT_OK if result.status in ("verified", "warning") else EXIT_NOT_VERIFIED


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


# Options that apply to some kinds of input only: given with another kind, they are a mistake.
_APPLIES = {
    "request": ("receipt",),
    "response": ("receipt",),
    "entry": ("proof",),
    "vkey": ("proof", "receipt"),
    "attestation": ("proof", "receipt"),
    "rim": ("report", "bundle", "gpu"),
    "jwks": ("report", "bundle", "gpu"),
    "nras": ("report", "bundle", "gpu"),
}


def _verify(args: argparse.Namespace) -> Any:
    from teelog.attestation.collateral import Collateral
    from teelog.attestation.inputs import detect_input_kind
    from teelog.attestation.report import verify_gpu_payload, verify_quote, verify_report
    from teelog.attestation.verdict import Result

    data = _read(args.file)
    at = _at(args.at) if args.at else datetime.now(UTC)
    nonce = _nonce(args.nonce)
    detected = detect_input_kind(data)
    kind = detected.kind
    for option, kinds in _APPLIES.items():
        if getattr(args, option) and kind not in kinds:
            flag = "--" + option
            raise _Unusable(f"{flag} does not apply to a {kind} (only to: {', '.join(kinds)})")
    if args.rim and not Path(args.rim).is_dir():
        raise _Unusable(f"--rim {args.rim}: not a directory")
    jwks = _read(args.jwks).decode("utf-8", "replace") if args.jwks else None
    nras = _read(args.nras).decode("utf-8", "replace") if args.nras else None

    def collateral() -> Collateral:
        return Collateral.from_files(
            args.collateral, pccs_url=args.pccs, cache_dir=args.collateral_cache
        )

    if kind in ("proof", "receipt"):
        vouching = (
            _vouching(args.attestation, args, at, collateral) if args.attestation else None
        )
        if kind == "proof":
            return Result(attestations=[_verify_logged_receipt(detected, args, vouching)])
        return Result(attestations=[_verify_receipt_input(detected.doc, args, vouching)])
    if kind == "gpu":
        return verify_gpu_payload(
            detected.doc, nonce=nonce, at=at, rim_dir=args.rim, jwks=jwks, nras=nras
        )
    if kind == "quote":
        return verify_quote(data, at=at, collateral=collateral())
    return verify_report(
        detected.doc,
        nonce=nonce,
        at=at,
        collateral=collateral(),
        rim_dir=args.rim,
        jwks=jwks,
        nras=nras,
    )


# -- receipts, logged receipts and the attestation vouching for their signer -----------------


@dataclass(frozen=True, slots=True)
class _Vouching:
    """The signing keys an attestation given with ``--attestation`` vouches for.

    ``proven``: the attestation was verified again here, or its entry's inclusion in the log
    was proven; otherwise it is the log's record, taken as given (``receipt.signer`` warns).
    ``failure``: why the given attestation vouches for nothing (then ``receipt.signer`` fails).
    """

    signers: frozenset[str]
    source: str
    proven: bool
    failure: str | None = None


def _norm(address: str) -> str:
    return address.lower().removeprefix("0x")


def _vouching(path: str, args: argparse.Namespace, at: datetime, collateral: Any) -> _Vouching:
    from teelog.attestation.errors import AttestationInputError
    from teelog.attestation.inputs import detect_input_kind, parse_json
    from teelog.attestation.report import verify_report

    data = _read(path)
    try:
        detected = detect_input_kind(data)
    except AttestationInputError:
        detected = None
    if detected is not None and detected.kind in ("report", "bundle"):
        result = verify_report(detected.doc, at=at, collateral=collateral())
        good = [v for v in result.attestations if v.status in _VOUCHING]
        return _Vouching(
            frozenset(_norm(v.signing_address) for v in good if v.signing_address),
            f"the report {path}, verified again as of {at:%Y-%m-%dT%H:%M:%SZ} "
            f"({len(good)} of {len(result.attestations)} attestation(s) verified or warning)",
            proven=True,
        )
    if detected is not None and detected.kind == "proof":
        entry, proof = _proof_parts(detected, None)
        try:
            index, size = _check_proof(proof, entry, _key(args))
        except ValueError as exc:
            return _Vouching(frozenset(), path, False, f"its tlog-proof does not verify: {exc}")
        return _attestation_entry(entry, f"attestation entry #{index} (proven in the tree of "
                                  f"size {size})", proven=True)
    try:
        doc = parse_json(data)
    except AttestationInputError as exc:
        raise _Unusable(f"--attestation {path}: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("entry_b64"), str):
        entry = _b64(doc["entry_b64"], f"--attestation {path}: entry_b64")
        where = f"attestation entry #{doc.get('index')}" if "index" in doc else path
        return _attestation_entry(entry, f"{where} (its inclusion not checked)", proven=False)
    if isinstance(doc, dict) and doc.get("type") == "attestation":
        return _attestation_entry(data, f"the attestation entry {path} (its inclusion not "
                                  "checked)", proven=False)
    raise _Unusable(
        f"--attestation {path}: neither a report, a bundle nor an attestation entry"
    )


def _attestation_entry(entry: bytes, source: str, *, proven: bool) -> _Vouching:
    from teelog.attestation.inputs import parse_json

    doc = parse_json(entry)
    if not isinstance(doc, dict) or doc.get("type") != "attestation":
        raise _Unusable(f"--attestation: {source} is not an attestation entry")
    items = doc.get("attestations")
    items = [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []
    good = {
        _norm(a["signing_address"])
        for a in items
        if a.get("status") in _VOUCHING and isinstance(a.get("signing_address"), str)
    }
    return _Vouching(frozenset(good), source, proven)


def _signer_check(addresses: list[str], vouching: _Vouching | None) -> Any:
    """``receipt.signer`` for the signers whose signature verified, against ``vouching``."""
    from teelog.attestation.verdict import Check

    name = "receipt.signer"
    if not addresses:
        return Check(name, "fail", "no signature verified, so no signer to look up")
    if vouching is None:
        return Check(
            name, "skip", "no --attestation given: the signer is not shown to run in a TEE"
        )
    if vouching.failure is not None:
        return Check(name, "fail", f"--attestation {vouching.source}: {vouching.failure}")
    vouched = [a for a in addresses if _norm(a) in vouching.signers]
    if not vouched:
        return Check(
            name,
            "fail",
            f"{', '.join(addresses)} is not among the {len(vouching.signers)} signing key(s) "
            f"that verified attestations in {vouching.source} vouch for",
        )
    detail = f"{vouched[0]} is vouched for by a verified attestation in {vouching.source}"
    return Check(name, "pass" if vouching.proven else "warn", detail)


def _verify_receipt_input(doc: dict[str, Any], args: argparse.Namespace, vouching: Any) -> Any:
    """A signature response (``{text, signature, ...}``) or a receipt entry."""
    from teelog.attestation.receipt import verify_receipt
    from teelog.attestation.verdict import Verdict

    request = _read(args.request) if args.request else None
    response = _read(args.response) if args.response else None
    if doc.get("type") != "receipt":
        verdict = verify_receipt(doc, request=request, response=response)
        sig = verdict.check("receipt.signature")
        signed = [verdict.signing_address] if sig and sig.status == "pass" else []
        verdict.checks = [c for c in verdict.checks if c.name != "receipt.signer"]
        verdict.checks.append(_signer_check([a for a in signed if a], vouching))
        return verdict
    if request is not None or response is not None:
        raise _Unusable("--request/--response apply to a signature response, not a receipt entry")
    verdict = Verdict(role="receipt", model=None, signing_address=None)
    _receipt_entry_checks(doc, verdict, vouching)
    return verdict


def _receipt_entry_checks(doc: dict[str, Any], verdict: Any, vouching: Any) -> None:
    """The checks of a receipt entry (docs/entries.md ``receipt`` v1), as the collector and
    the monitor make them (``receipt.text``, ``receipt.signature.<algo>``), then
    ``receipt.signer`` against the attestation given."""
    from teelog.attestation.verdict import Check
    from teelog.entries.verdict import receipt_signature_checks

    sigs = doc.get("signatures")
    try:
        item = {
            "text": doc["text"],
            "request_sha256": doc["request_sha256"],
            "response_sha256": doc["response_sha256"],
            **{a: s for a, s in (sigs or {}).items() if a in ("ecdsa", "ed25519")},
        }
        if not all(isinstance(item[k], str) for k in ("text", "request_sha256", "response_sha256")):
            raise TypeError("text and hashes must be strings")
        for algo in ("ecdsa", "ed25519"):
            sig = item.get(algo)
            if sig is not None and not (
                isinstance(sig, dict)
                and isinstance(sig.get("signature"), str)
                and isinstance(sig.get("signing_address"), str)
            ):
                raise TypeError(f"signatures.{algo} is not {{signing_address, signature}}")
    except (KeyError, TypeError, AttributeError) as exc:
        verdict.add("receipt.text", "fail", f"malformed receipt entry: {exc}")
        verdict.checks.append(_signer_check([], vouching))
        return
    model = doc.get("model")
    verdict.model = model if isinstance(model, str) else None
    checks = receipt_signature_checks(item)
    verdict.checks += [Check.from_json(c) for c in checks]
    signed = [
        item[c["name"].removeprefix("receipt.signature.")]["signing_address"]
        for c in checks
        if c["name"].startswith("receipt.signature.") and c["status"] == "pass"
    ]
    verdict.signing_address = signed[0] if signed else None
    verdict.checks.append(_signer_check(signed, vouching))


def _key(args: argparse.Namespace) -> Any:
    from teelog.log import NoteError, parse_vkey
    from teelog.log.note import Ed25519Verifier

    if not args.vkey:
        raise _Unusable("a tlog-proof is checked against the log's key: give --vkey KEY")
    text = args.vkey
    if Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8", errors="replace").strip()
    try:
        key = parse_vkey(text)
    except NoteError as exc:
        raise _Unusable(f"--vkey: {exc}") from exc
    if not isinstance(key, Ed25519Verifier):
        raise _Unusable("--vkey must be the log's Ed25519 (type 0x01) verifier key")
    return key


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Unusable(f"{what} is not base64: {exc}") from exc


def _proof_parts(detected: Any, entry_file: str | None) -> tuple[bytes, str]:
    """The entry bytes and the tlog-proof text of a receipt lookup or a tlog-proof file."""
    if detected.doc is not None:
        return _b64(detected.doc["entry_b64"], "entry_b64"), detected.doc["tlog_proof"]
    try:
        text = detected.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unusable(f"the tlog-proof is not UTF-8 text: {exc}") from exc
    if not entry_file:
        raise _Unusable("a tlog-proof file needs the entry it proves: give --entry FILE")
    return _read(entry_file), text


def _check_proof(text: str, entry: bytes, key: Any) -> tuple[int, int]:
    """Verify the proof and its checkpoint signature; ``(index, tree size)`` or ValueError."""
    from teelog.log import TlogProofError, parse_tlog_proof, verify_tlog_proof

    try:
        parse_tlog_proof(text)
    except TlogProofError as exc:
        raise _Unusable(f"not a c2sp.org/tlog-proof@v1: {exc}") from exc
    proof = verify_tlog_proof(text, entry, key)  # TlogProofError is a ValueError
    assert proof.checkpoint is not None  # set by verify_tlog_proof
    return proof.index, proof.checkpoint.size


def _witnessed_check(verdict: Any, text: str, key: Any, policy_file: str) -> None:
    """``log.witnessed``: the proof's checkpoint meets the witness policy's quorum (a
    checkpoint below quorum fails: a split view cannot be excluded)."""
    from teelog.log import CheckpointError, parse_tlog_proof
    from teelog.log.policy import PolicyError, read_policy

    try:
        policy = read_policy(Path(policy_file))
    except PolicyError as exc:
        raise _Unusable(f"--witness-policy: {exc}") from exc
    note = parse_tlog_proof(text).checkpoint_note
    try:
        result = policy.check(note, key)
    except CheckpointError as exc:
        verdict.add("log.witnessed", "fail", f"a cosignature does not verify: {exc}")
        return
    names = ", ".join(result.cosigned) or "no witness"
    if result.quorum_met:
        verdict.add("log.witnessed", "pass", f"cosigned by {names}: the policy's quorum is met")
    else:
        verdict.add(
            "log.witnessed", "fail", f"cosigned by {names}: below the policy's quorum"
        )


def _verify_logged_receipt(detected: Any, args: argparse.Namespace, vouching: Any) -> Any:
    """A logged receipt: its inclusion (``log.inclusion``: the RFC 9162 inclusion proof to a
    checkpoint signed by ``--vkey``), then the receipt's own checks."""
    from teelog.attestation.inputs import parse_json
    from teelog.attestation.verdict import Verdict

    entry, text = _proof_parts(detected, args.entry)
    key = _key(args)
    verdict = Verdict(role="receipt", model=None, signing_address=None)
    try:
        index, size = _check_proof(text, entry, key)
    except ValueError as exc:
        verdict.add("log.inclusion", "fail", f"tlog-proof does not verify: {exc}")
    else:
        verdict.add(
            "log.inclusion",
            "pass",
            f"entry sha256 {hashlib.sha256(entry).hexdigest()[:16]}… is leaf {index} of the "
            f"tree of size {size}, whose checkpoint is signed by {key.name}",
        )
        if args.witness_policy:
            _witnessed_check(verdict, text, key, args.witness_policy)
    try:
        doc = parse_json(entry)
    except ValueError as exc:
        raise _Unusable(f"the proven entry is not JSON teelog reads: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "receipt":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise _Unusable(f"the proven entry is a {str(kind)[:40]!r} entry, not a receipt")
    _receipt_entry_checks(doc, verdict, vouching)
    return verdict


def _at(text: str) -> datetime:
    """``--at``: RFC 3339 or Unix seconds (``attestation.times.parse_time``)."""
    from teelog.attestation.times import TimeFormatError, parse_time

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
    for digest in getattr(result, "collateral_cited", ()):
        lines.append(f"collateral not valid at the verification time, not used: sha256 {digest}")
    return "\n".join(lines) + "\n"
