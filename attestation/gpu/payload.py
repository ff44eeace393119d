"""Decode ``nvidia_payload``: the GPU evidence wrapper providers publish, in every encoding seen.

Shapes accepted (docs/attestation.md "nvidia_payload encodings accepted"):

- NRAS request body, as a JSON string or an object (vllm-proxy, NEAR AI Cloud):
  ``{"nonce": hex, "arch": "HOPPER", "evidence_list": [{"evidence", "certificate"[, "arch"]
  [, "nonce"]}, ...][, "claims_version"]}``. A JSON string that itself holds a JSON string is
  unwrapped once.
- A bare evidence list: NVIDIA NVAT's serialization ``[{"arch", "nonce", "evidence",
  "certificate"}]`` and the Redpill "chutes" ``gpu_evidence`` list (or an object holding it).
- ``evidence``: base64 of the report bytes; base64 of the report as hex text (private-ml-sdk
  before 2025-03, the old ``attestationReportHexStr``); or plain hex text.
- ``certificate``: base64 of the concatenated PEM chain, or the PEM text itself.

NVIDIA verdicts (an NRAS detached EAT, an ``nvattest`` result with ``claims``/``detached_eat``)
hold no evidence; they are rejected here with a :class:`PayloadError` saying so, and belong to
:mod:`teelog.attestation.gpu.nras`.

Nothing here is verified: the result is untrusted data for :mod:`.verify`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import PayloadError

_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# A report starts with the GET_MEASUREMENTS request header: SPDM version 1.x, code 0xE0.
_REPORT_CODE = 0xE0
_MAX_GPUS = 1024  # far above any node (8 GPUs + NVSwitches); bounds work on hostile input


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    """The evidence of one GPU, decoded but not verified.

    ``certificates`` are DER, in the order given (leaf first). ``nonce`` is the entry's own
    ``nonce`` field when present (unsigned; the signed nonce is inside ``report``).
    ``encoding`` is how ``evidence`` was encoded: ``base64``, ``base64-hex`` or ``hex``.
    """

    index: int
    report: bytes
    certificates: tuple[bytes, ...]
    arch: str | None
    nonce: bytes | None
    encoding: str


@dataclass(frozen=True, slots=True)
class NvidiaPayload:
    """A decoded ``nvidia_payload``: per-GPU evidence plus the wrapper's own (unsigned) fields.

    ``format`` names the wrapper: ``nras-request`` (``evidence_list`` object) or
    ``evidence-array`` (bare list, NVAT or chutes). ``rejected`` lists ``(index, reason)`` of
    entries that could not be decoded (only when decoding with ``strict=False``).
    """

    evidence: tuple[GpuEvidence, ...]
    nonce: bytes | None
    arch: str | None
    format: str
    rejected: tuple[tuple[int, str], ...] = ()


def _hex_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be a hex string, not {type(value).__name__}")
    text = value.removeprefix("0x").removeprefix("0X")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise PayloadError(f"{what} is not hex: {value[:80]!r}") from None


def _arch(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isalnum():
        raise PayloadError(f"{what} must be a name like HOPPER, got {str(value)[:40]!r}")
    return value.upper()


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{what} is not valid base64") from None


def decode_report(value: Any, what: str = "evidence") -> tuple[bytes, str]:
    """Decode an ``evidence`` field to report bytes; return ``(bytes, encoding)``.

    Real reports start ``11 e0``; base64 that decodes to ASCII hex of even length is the legacy
    hex-text encoding; a value that is not base64 but is hex is plain hex text.
    """
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be a string, not {type(value).__name__}")
    compact = "".join(value.split())
    if not compact:
        raise PayloadError(f"{what} is empty")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw is not None and len(raw) >= 2 and raw[1] == _REPORT_CODE:
        return raw, "base64"
    if raw and len(raw) % 2 == 0 and _HEX_DIGITS.issuperset(raw):
        inner = bytes.fromhex(raw.decode("ascii"))
        if len(inner) >= 2 and inner[1] == _REPORT_CODE:
            return inner, "base64-hex"
    if len(compact) % 2 == 0 and _HEX_DIGITS.issuperset(compact.encode("ascii", "replace")):
        inner = bytes.fromhex(compact)
        if len(inner) >= 2 and inner[1] == _REPORT_CODE:
            return inner, "hex"
    if raw is None:
        raise PayloadError(f"{what} is neither base64 nor hex")
    # Decodable but not recognisably a report: hand it on, the SPDM parser says what is wrong.
    return raw, "base64"


def decode_certificate_chain(value: Any, what: str = "certificate") -> tuple[bytes, ...]:
    """Decode a ``certificate`` field (base64 of PEM text, or PEM text) to DER certificates."""
    if not isinstance(value, str | bytes):
        raise PayloadError(f"{what} must be a string, not {type(value).__name__}")
    return _decode_chain(value, what)


@lru_cache(maxsize=1024)
def _decode_chain(value: str | bytes, what: str) -> tuple[bytes, ...]:
    # Memoised: a node's chains repeat in every bundle; decoding is pure (errors are not cached).
    if isinstance(value, bytes):
        pem = value
    else:
        stripped = value.strip()
        if stripped.startswith("-----BEGIN"):
            pem = stripped.encode("ascii", "replace")
        else:
            pem = _b64("".join(stripped.split()), what)
    ders: list[bytes] = []
    for block in _PEM_CERT.finditer(pem):
        try:
            ders.append(base64.b64decode(b"".join(block.group(1).split()), validate=True))
        except (binascii.Error, ValueError):
            raise PayloadError(f"{what}: PEM block {len(ders)} is not valid base64") from None
    if not ders:
        raise PayloadError(f"{what} holds no PEM certificate")
    return tuple(ders)


def decode_evidence_entry(
    entry: Any, index: int, *, default_arch: str | None = None
) -> GpuEvidence:
    """Decode one ``{"evidence", "certificate"[, "arch"][, "nonce"]}`` entry."""
    what = f"evidence_list[{index}]"
    if not isinstance(entry, dict):
        raise PayloadError(f"{what} must be an object, not {type(entry).__name__}")
    for key in ("evidence", "certificate"):
        if key not in entry:
            raise PayloadError(f"{what} has no {key!r}")
    report, encoding = decode_report(entry["evidence"], f"{what}.evidence")
    certificates = decode_certificate_chain(entry["certificate"], f"{what}.certificate")
    arch = _arch(entry.get("arch"), f"{what}.arch") or default_arch
    nonce = _hex_bytes(entry["nonce"], f"{what}.nonce") if entry.get("nonce") is not None else None
    return GpuEvidence(index, report, certificates, arch, nonce, encoding)


def _load_json(value: str | bytes) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise PayloadError("nvidia_payload is not valid JSON") from None


def _reject_verdicts(doc: Any) -> None:
    if isinstance(doc, dict) and ("detached_eat" in doc or "claims" in doc):
        raise PayloadError(
            "this is an NVIDIA attestation result (claims / detached EAT), not GPU evidence; "
            "check it as an NRAS response"
        )
    if isinstance(doc, list) and doc and isinstance(doc[0], list) and doc[0][:1] == ["JWT"]:
        raise PayloadError(
            "this is an NRAS response (detached EAT), not GPU evidence; check it as NRAS response"
        )


def _evidence_list(
    items: Any, default_arch: str | None, strict: bool
) -> tuple[tuple[GpuEvidence, ...], tuple[tuple[int, str], ...]]:
    if not isinstance(items, list):
        raise PayloadError(f"evidence list must be a list, not {type(items).__name__}")
    if not items:
        raise PayloadError("evidence list is empty")
    if len(items) > _MAX_GPUS:
        raise PayloadError(f"evidence list has {len(items)} entries, more than {_MAX_GPUS}")
    decoded: list[GpuEvidence] = []
    rejected: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        try:
            decoded.append(decode_evidence_entry(item, i, default_arch=default_arch))
        except PayloadError as exc:
            if strict:
                raise
            rejected.append((i, str(exc)))
    return tuple(decoded), tuple(rejected)


def decode_nvidia_payload(
    payload: str | bytes | dict[str, Any] | list[Any], *, strict: bool = True
) -> NvidiaPayload:
    """Decode an ``nvidia_payload`` (string or parsed JSON) into per-GPU evidence.

    Raises :class:`PayloadError` for anything that is not GPU evidence in a known shape. With
    ``strict=False`` an undecodable entry does not sink the others: it is listed in
    ``rejected`` instead (the wrapper itself must still be readable).
    """
    doc: Any = payload
    if isinstance(doc, str | bytes | bytearray):
        doc = _load_json(doc)
        if isinstance(doc, str):  # double-encoded JSON string
            doc = _load_json(doc)
    _reject_verdicts(doc)
    if isinstance(doc, list):
        evidence, rejected = _evidence_list(doc, None, strict)
        return NvidiaPayload(evidence, None, None, "evidence-array", rejected)
    if not isinstance(doc, dict):
        kind = type(doc).__name__
        raise PayloadError(f"nvidia_payload must be a JSON object or list, not {kind}")
    if "evidence_list" in doc:
        arch = _arch(doc.get("arch"), "arch")
        nonce = _hex_bytes(doc["nonce"], "nonce") if doc.get("nonce") is not None else None
        evidence, rejected = _evidence_list(doc["evidence_list"], arch, strict)
        return NvidiaPayload(evidence, nonce, arch, "nras-request", rejected)
    if "gpu_evidence" in doc:
        # A chutes attestation entry: its "nonce" is the client's raw nonce, not the GPU
        # requester nonce (which is derived from it), so it is not carried over.
        evidence, rejected = _evidence_list(doc["gpu_evidence"], None, strict)
        return NvidiaPayload(evidence, None, None, "evidence-array", rejected)
    keys = ", ".join(sorted(map(str, doc)))[:200]
    raise PayloadError(f"nvidia_payload has no evidence_list (keys: {keys})")
