"""Reading ``key_release`` and ``key_policy`` entries (docs/entries.md) defensively.

Both are written by the key broker (docs/broker.md), but the log is public and append-only, so
any field may be missing or of the wrong type: each is taken only when it has the type the
entry format gives it, else it is ``None`` and a problem is recorded. ``insecure`` is true
unless the entry says exactly ``false``: a release to ``sample`` evidence (no TEE, issue 11)
must never be shown as verified, and a hostile entry cannot make an insecure release look
secure by leaving the flag out or giving it another type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from teelog.attestation.verdict import STATUSES

KEY_RELEASE = "key_release"
KEY_POLICY = "key_policy"
DECISIONS = ("released", "denied")
_MAX = 200  # longer strings are cut for the index (the entry page shows the logged bytes)


@dataclass(slots=True)
class KeyEvent:
    """The indexable fields of one ``key_release`` (decision) or ``key_policy`` entry."""

    kind: str  # "released" | "denied" | "policy"
    model: str | None
    version: str | None
    manifest_sha256: str | None
    key_id: str | None
    policy_sha256: str | None
    resource: str | None
    broker: str | None
    time: str | None = None
    insecure: bool = True
    tee: str | None = None
    thumbprint: str | None = None
    quote_sha256: str | None = None
    evidence_status: str | None = None
    reason: str | None = None
    measurements: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def _text(obj: Any, name: str, problems: list[str], where: str = "") -> str | None:
    value = obj.get(name) if isinstance(obj, dict) else None
    if value is None:
        return None
    if isinstance(value, str):
        return value[:_MAX]
    problems.append(f"field {where}{name!r} is {type(value).__name__}, expected string")
    return None


def _model(doc: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    model = doc.get("model")
    if not isinstance(model, dict):
        problems.append("field 'model' is missing or not an object")
        return {}
    return model


def key_event(doc: dict[str, Any]) -> KeyEvent:
    """The fields of a ``key_release`` or ``key_policy`` entry; never raises."""
    problems: list[str] = []
    model = _model(doc, problems)
    common = {
        "model": _text(model, "name", problems, "model."),
        "version": _text(model, "version", problems, "model."),
        "manifest_sha256": _text(model, "manifest_sha256", problems, "model."),
        "key_id": _text(model, "key_id", problems, "model."),
        "policy_sha256": _text(doc, "policy_sha256", problems),
        "resource": _text(doc, "resource", problems),
        "broker": _text(doc, "broker", problems),
    }
    if doc.get("type") == KEY_POLICY:
        if not isinstance(doc.get("policy"), dict):
            problems.append("field 'policy' is missing or not an object")
        return KeyEvent(kind="policy", problems=problems, **common)
    decision = doc.get("decision")
    if decision not in DECISIONS:
        problems.append(f"decision {str(decision)[:60]!r} is not one of {', '.join(DECISIONS)}")
        decision = "denied"  # an unreadable decision is never shown as a release
    insecure = doc.get("insecure")
    if insecure is not False and insecure is not True:
        problems.append(f"field 'insecure' is {type(insecure).__name__}, expected boolean")
    requester = doc.get("requester")
    if not isinstance(requester, dict):
        problems.append("field 'requester' is missing or not an object")
        requester = {}
    tee = _text(requester, "tee", problems, "requester.")
    status = doc.get("evidence_status")
    if status is not None and status not in STATUSES:
        problems.append(f"evidence_status {str(status)[:60]!r} is not one of {', '.join(STATUSES)}")
        status = None
    measurements = requester.get("measurements")
    return KeyEvent(
        kind=decision,
        time=_text(doc, "decided_at", problems),
        # Sample evidence is insecure whatever the flag says (entries/key_release.py).
        insecure=insecure is not False or tee == "sample",
        tee=tee,
        thumbprint=_text(requester, "tee_pubkey_thumbprint", problems, "requester."),
        quote_sha256=_text(requester, "quote_sha256", problems, "requester."),
        evidence_status=status,
        reason=_text(doc, "reason", problems),
        measurements=measurements if isinstance(measurements, dict) else None,
        problems=problems,
        **common,
    )


def shown_status(event: KeyEvent) -> str | None:
    """The evidence status a list may show: never ``verified`` for an insecure decision."""
    if event.insecure and event.evidence_status == "verified":
        return "unverifiable"
    return event.evidence_status
