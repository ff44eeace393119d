"""Reading log entries defensively: what the indexer stores and the pages show.

Entries are canonical JSON (RFC 8785) of the shapes in ``docs/entries.md`` (``attestation`` v1,
``receipt`` v1). The log is append-only and public, so the explorer must survive anything in
it: an entry that is not JSON, not an object, of an unknown type or with fields of the wrong
type is still indexed (as ``unknown`` or ``malformed``) and still shown, as text, never
interpreted. Nothing here raises on bad input; every oddity becomes a recorded ``problem``.

Lookup keys are normalised so that a user's search matches however it was typed: hex is
lowercased and loses a ``0x`` prefix, except Ethereum addresses and ECDSA signatures, which keep
their ``0x`` and are lowercased (addresses compare case-insensitively, docs/entries.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from teelog.attestation.inputs import UntrustedJSONError, parse_json
from teelog.attestation.measurements import SCALAR_FIELDS
from teelog.attestation.verdict import STATUSES
from teelog.entries.attestation import attestations_of, measurements_of

ENTRY_TYPES = ("attestation", "receipt")


# Lookup-key kinds (explorer_keys.kind). Search matches a value against every kind; node names
# are looked up through the entries table's node index instead (every entry has one).
KEY_KINDS = (
    "signature",
    "chat_id",
    "address",
    "response_hash",
    "request_hash",
    "quote_hash",
    "measurement",
)

_HEX = re.compile(r"[0-9a-f]+")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_MAX_KEY = 200  # longer "values" are not lookup keys: no one types them, and they bloat the index

# The measurement fields of docs/entries.md whose values are searchable (the quote hash is a
# lookup key of its own kind).
MEASUREMENT_FIELDS = tuple(name for name in SCALAR_FIELDS if name != "quote_sha256")


def normalise_value(value: str) -> str:
    """Normalise a search value or key: trimmed, lowercased; bare hex loses a ``0x`` prefix.

    ``0x`` is kept for Ethereum addresses (40 hex) and ECDSA signatures (130 hex), which are
    written with it everywhere (docs/entries.md); other hex is stored bare.
    """
    v = value.strip().lower()
    if v.startswith("0x") and _HEX.fullmatch(v[2:] or "g"):
        digits = v[2:]
        if len(digits) in (40, 130):
            return v
        return digits
    if _HEX.fullmatch(v) and len(v) in (40, 130):
        return "0x" + v
    return v


@dataclass(frozen=True, slots=True)
class RoleStatus:
    """The status of one part of an entry, for lists that show each at a glance: one per
    attestation of an attestation entry (``model verified · gateway unverifiable``), one
    ``receipt`` for a receipt. ``reason`` is the one line saying why it is not ``verified``
    (``None`` when it is), taken from the entry's own checks."""

    role: str
    model: str | None
    status: str | None
    reason: str | None
    signing_address: str | None = None  # normalised (``normalise_value``), attestations only

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "model": self.model, "status": self.status,
                "reason": self.reason}


# Which check explains a status that is not ``verified``: the first check of this outcome.
# (A ``skip`` recorded as informative, such as ``gpu.rim`` without reference files, carries
# no ``required`` flag in the entry; it only explains ``unverifiable`` when nothing else does.)
_EXPLAINED_BY = {"failed": ("fail",), "unverifiable": ("skip",), "warning": ("warn",)}
_INFORMATIVE_SKIPS = frozenset({"gpu.rim", "receipt.hashes"})
_MAX_REASON = 300


def status_reason(status: str | None, checks: Any) -> str | None:
    """The one line saying why ``status`` is not ``verified``: ``check name: detail`` of the
    first check that explains it, or ``None`` for ``verified``."""
    if status == "verified" or status not in _EXPLAINED_BY:
        return None
    items = [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []
    wanted = _EXPLAINED_BY[status]
    found = [c for c in items if c.get("status") in wanted]
    if status == "unverifiable":
        found = [c for c in found if c.get("name") not in _INFORMATIVE_SKIPS] or found
        if not found:
            return "no check could run" if not items else None
    if not found:
        return None
    check = found[0]
    line = " ".join(f"{check.get('name')}: {check.get('detail')}".split())  # one line
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


@dataclass(slots=True)
class EntryView:
    """One entry as the explorer understands it.

    ``kind`` is the entry's ``type`` when it is one we know, else ``unknown`` (valid JSON object
    of another type) or ``malformed`` (not a JSON object; ``problems`` says why).
    """

    index: int
    raw: bytes
    kind: str
    doc: dict[str, Any] | None
    node: str | None = None
    time: str | None = None
    status: str | None = None
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)
    roles: list[RoleStatus] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """SHA-256 of the entry bytes (hex): names a malformed entry as surely as its index."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def text(self) -> str:
        """The raw bytes as text (lossless for UTF-8; replacement characters otherwise)."""
        return self.raw.decode("utf-8", errors="replace")


def _str(doc: dict[str, Any], name: str, problems: list[str]) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    problems.append(f"field {name!r} is {type(value).__name__}, expected string")
    return None


def _add_key(keys: list[tuple[str, str]], kind: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        return
    v = normalise_value(value)
    if len(v) <= _MAX_KEY and (kind, v) not in keys:
        keys.append((kind, v))


def parse_entry(index: int, raw: bytes) -> EntryView:
    """Parse one entry's bytes; never raises (see the module docstring)."""
    try:
        doc = parse_json(raw)
    except UntrustedJSONError as exc:  # also deep nesting, huge integers, lone surrogates
        view = EntryView(index, raw, "malformed", None, summary="not valid JSON")
        view.problems.append(f"not JSON teelog reads: {exc}")
        return view
    if not isinstance(doc, dict):
        view = EntryView(index, raw, "malformed", None, summary="not a JSON object")
        view.problems.append(f"entry is a JSON {type(doc).__name__}, expected an object")
        return view
    etype = doc.get("type")
    kind = etype if etype in ENTRY_TYPES else "unknown"
    view = EntryView(index, raw, kind, doc)
    if doc.get("v") != 1 and kind != "unknown":
        view.problems.append(f"version {doc.get('v')!r} of {etype!r} is not one we know (1)")
    view.node = _str(doc, "node", view.problems)
    status = doc.get("status")
    if status in STATUSES:
        view.status = status
    elif status is not None:
        view.problems.append(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if kind == "attestation":
        _read_attestation(view, doc)
    elif kind == "receipt":
        _read_receipt(view, doc)
    else:
        view.time = _str(doc, "observed_at", view.problems)
        view.summary = f"entry of unknown type {str(etype)[:60]!r}"
    return view


def _read_attestation(view: EntryView, doc: dict[str, Any]) -> None:
    view.time = _str(doc, "observed_at", view.problems)
    if not isinstance(doc.get("attestations"), list):
        view.problems.append("field 'attestations' is missing or not a list")
    atts = attestations_of(doc)
    roles = []
    for att in atts:
        role = att.get("role") if isinstance(att.get("role"), str) else "?"
        model = att.get("model") if isinstance(att.get("model"), str) else None
        roles.append(f"{role} {model}" if model else role)
        _add_key(view.keys, "address", att.get("signing_address"))
        status = att.get("status") if att.get("status") in STATUSES else None
        address = att.get("signing_address")
        view.roles.append(
            RoleStatus(
                role=role[:40],
                model=model[:200] if model else None,
                status=status,
                reason=status_reason(status, att.get("checks")),
                signing_address=normalise_value(address)[:200]
                if isinstance(address, str) and address.strip()
                else None,
            )
        )
        m = measurements_of(att)
        for name in MEASUREMENT_FIELDS:
            _add_key(view.keys, "measurement", m.get(name))
        _add_key(view.keys, "quote_hash", m.get("quote_sha256"))
        gpus = m.get("gpus")
        if isinstance(gpus, list):
            for gpu in gpus:
                if isinstance(gpu, dict):
                    _add_key(view.keys, "measurement", gpu.get("driver_version"))
                    _add_key(view.keys, "measurement", gpu.get("vbios_version"))
    view.summary = (
        f"{len(atts)} attestation(s): " + ", ".join(roles) if roles else "no attestations"
    )


def _read_receipt(view: EntryView, doc: dict[str, Any]) -> None:
    view.time = _str(doc, "signed_at", view.problems) or _str(doc, "observed_at", view.problems)
    _add_key(view.keys, "chat_id", doc.get("chat_id"))
    _add_key(view.keys, "request_hash", doc.get("request_sha256"))
    _add_key(view.keys, "response_hash", doc.get("response_sha256"))
    sigs = doc.get("signatures")
    if isinstance(sigs, dict):
        for sig in sigs.values():
            if isinstance(sig, dict):
                _add_key(view.keys, "signature", sig.get("signature"))
                _add_key(view.keys, "address", sig.get("signing_address"))
    else:
        view.problems.append("field 'signatures' is missing or not an object")
    chat = doc.get("chat_id") if isinstance(doc.get("chat_id"), str) else "?"
    model = doc.get("model") if isinstance(doc.get("model"), str) else None
    view.roles.append(
        RoleStatus("receipt", model[:200] if model else None, view.status,
                   status_reason(view.status, doc.get("checks")))
    )
    view.summary = f"receipt {chat[:60]}" + (f" ({model[:60]})" if model else "")
