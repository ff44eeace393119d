"""What a piece of untrusted input is: the one home of input and report-format detection.

Every door of teelog that accepts evidence — ``teelog verify``, the explorer's ``/verify``
page, ``teelog import`` and the collector's poll — asks this module what it was given, so
that the same bytes are the same thing everywhere.

Input kinds (:func:`detect_input_kind`), tried in this order:

``proof``    a ``c2sp.org/tlog-proof@v1`` text, or a JSON object with ``entry_b64`` and
             ``tlog_proof`` (the explorer's ``GET /api/v1/receipts`` answer);
``receipt``  a JSON object with string ``text`` and ``signature`` (a signature response,
             research note node-api.md §b), or a log entry of ``type`` ``receipt``;
``bundle``   a JSON object in the ``near-gateway`` report format (several attestations);
``report``   a JSON object in the ``vllm-proxy`` or ``redpill-chutes`` report format;
``gpu``      a bare NVIDIA ``nvidia_payload``: an object with ``evidence_list``, or a list of
             ``{evidence, certificate}`` objects (research note gpu-attestation.md §1);
``quote``    anything that is not JSON: a raw DCAP quote, binary, hex or base64.

Report formats (:func:`detect_report_format`, research note node-api.md §a):

``redpill-chutes``  ``attestation_type: "chutes"``;
``near-gateway``    ``gateway_attestation`` or ``model_attestations``;
``vllm-proxy``      ``intel_quote``, ``quote`` or ``all_attestations``. A bare dstack
                    ``GetQuote`` answer (``{quote, event_log}``) is this format: the verifier
                    reads it as a report without a signer, so the collector and the importer
                    accept it too.

:func:`parse_json` is the strict reader of untrusted JSON used by these doors and by every
reader of log entries: JSON nested deeper than :data:`MAX_JSON_DEPTH`, an integer of more
digits than Python converts (4,300), a lone surrogate escape (``"\\ud800"``, not Unicode
text) or bytes that are not UTF-8 are an :class:`UntrustedJSONError`, never an exception of
another type further on (RFC 8259 §9 lets a parser set such limits; RFC 7493 I-JSON §2.1
forbids unpaired surrogates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from .errors import AttestationInputError

InputKind = Literal["proof", "receipt", "bundle", "report", "gpu", "quote"]
INPUT_KINDS: tuple[InputKind, ...] = ("proof", "receipt", "bundle", "report", "gpu", "quote")
REPORT_FORMATS = ("vllm-proxy", "near-gateway", "redpill-chutes")
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"

# Far deeper than any report (a NEAR bundle is 6 levels), far shallower than the interpreter's
# recursion limit, which a nested document would otherwise reach inside json or a reader.
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)


class UntrustedJSONError(AttestationInputError):
    """Untrusted bytes that are not JSON teelog reads (the message says why)."""


class UnknownInputError(AttestationInputError):
    """Input that is none of the kinds of :data:`INPUT_KINDS`."""


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text ``data`` (strings skipped)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON strictly (see the module docstring); :class:`UntrustedJSONError`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedJSONError(f"not UTF-8 (byte {exc.start})") from None
    depth = json_depth(raw)
    if depth > max_depth:
        raise UntrustedJSONError(f"JSON nested {depth} levels deep; at most {max_depth} are read")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise UntrustedJSONError("JSON nested too deep") from None
    except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
        raise UntrustedJSONError(f"not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise UntrustedJSONError(
                "JSON holds a lone surrogate escape (such as \\ud800): not Unicode text"
            ) from None
    return doc


def detect_report_format(doc: Any) -> str | None:
    """The report format of a parsed report (see the module docstring), or ``None``."""
    if not isinstance(doc, dict):
        return None
    if doc.get("attestation_type") == "chutes":
        return "redpill-chutes"
    if "gateway_attestation" in doc or "model_attestations" in doc:
        return "near-gateway"
    if "intel_quote" in doc or "quote" in doc or "all_attestations" in doc:
        return "vllm-proxy"
    return None


def _is_gpu_payload(doc: Any) -> bool:
    if isinstance(doc, dict):
        return isinstance(doc.get("evidence_list"), list)
    return (
        isinstance(doc, list)
        and bool(doc)
        and all(isinstance(x, dict) and "evidence" in x and "certificate" in x for x in doc)
    )


@dataclass(frozen=True, slots=True)
class DetectedInput:
    """An input and what it is: ``doc`` is the parsed JSON (``None`` for a quote or a
    tlog-proof text), ``report_format`` is set for a report or bundle."""

    kind: InputKind
    data: bytes
    doc: Any = None
    report_format: str | None = None


def _looks_like_json(data: bytes) -> bool:
    return data.lstrip()[:1] in (b"{", b"[", b'"')


def detect_input_kind(data: bytes) -> DetectedInput:
    """What ``data`` is (see the module docstring). Raises :class:`UntrustedJSONError` for
    bytes that start like JSON but are not JSON teelog reads, and
    :class:`UnknownInputError` for JSON of no known kind."""
    if data.lstrip().startswith(TLOG_PROOF_HEADER.encode()):
        return DetectedInput("proof", data)
    if not _looks_like_json(data):
        return DetectedInput("quote", data)
    doc = parse_json(data)
    if isinstance(doc, dict):
        if isinstance(doc.get("entry_b64"), str) and isinstance(doc.get("tlog_proof"), str):
            return DetectedInput("proof", data, doc)
        if isinstance(doc.get("text"), str) and isinstance(doc.get("signature"), str):
            return DetectedInput("receipt", data, doc)
        if doc.get("type") == "receipt":
            return DetectedInput("receipt", data, doc)
        fmt = detect_report_format(doc)
        if fmt is not None:
            return DetectedInput("bundle" if fmt == "near-gateway" else "report", data, doc, fmt)
    if _is_gpu_payload(doc):
        return DetectedInput("gpu", data, doc)
    if isinstance(doc, dict):
        keys = ", ".join(sorted(str(k)[:40] for k in doc)[:8])
        raise UnknownInputError(
            "a JSON object that is no report, bundle, receipt, tlog-proof or GPU payload "
            f"(keys: {keys})"
        )
    raise UnknownInputError(
        f"a JSON {type(doc).__name__}: expected an object (a report, bundle, receipt or "
        "receipt lookup) or a GPU evidence list"
    )


__all__ = [
    "INPUT_KINDS",
    "MAX_JSON_DEPTH",
    "REPORT_FORMATS",
    "TLOG_PROOF_HEADER",
    "DetectedInput",
    "InputKind",
    "UnknownInputError",
    "UntrustedJSONError",
    "detect_input_kind",
    "detect_report_format",
    "json_depth",
    "parse_json",
]
