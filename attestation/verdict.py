"""The verdict model: what every verification returns (fixed JSON, docs/attestation.md "Verdicts").

A verdict is an overall status and a list of named checks. The overall status is derived from
the checks, never set by hand, so that nothing is shown as ``verified`` unless every check it
depends on passed:

- any check ``fail``                       -> ``failed``
- else any check ``skip`` (could not run)  -> ``unverifiable``
- else any check ``warn``                  -> ``warning``
- else (all ``pass``, at least one)        -> ``verified``
- no checks at all                         -> ``unverifiable``

Checks that are informative only (a verdict can still be verified without them, such as
``gpu.rim`` when no reference files were given) are recorded as ``skip`` with ``required=False``;
they are shown but do not lower the status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

CheckStatus = Literal["pass", "fail", "warn", "skip"]
Status = Literal["verified", "warning", "failed", "unverifiable"]

CHECK_STATUSES: tuple[CheckStatus, ...] = ("pass", "fail", "warn", "skip")
# Worst last: the order used to combine statuses.
STATUSES: tuple[Status, ...] = ("verified", "warning", "unverifiable", "failed")


@dataclass(frozen=True, slots=True)
class Check:
    """One named check: ``{name, status: pass|fail|warn|skip, detail}``.

    ``required`` says whether the check counts toward the overall status when it is ``skip``;
    a ``fail`` or ``warn`` always counts.
    """

    name: str
    status: CheckStatus
    detail: str
    required: bool = True

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"check {self.name!r}: unknown status {self.status!r}")

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Check:
        return cls(name=str(obj["name"]), status=obj["status"], detail=str(obj.get("detail", "")))


def status_of(checks: Iterable[Check]) -> Status:
    """Derive the overall status from checks, by the rules in the module docstring."""
    seen_fail = seen_skip = seen_warn = False
    counted = 0
    for check in checks:
        if check.status == "fail":
            seen_fail = True
        elif check.status == "skip":
            if check.required:
                seen_skip = True
            continue
        elif check.status == "warn":
            seen_warn = True
        counted += 1
    if seen_fail:
        return "failed"
    if seen_skip or counted == 0:
        return "unverifiable"
    if seen_warn:
        return "warning"
    return "verified"


def malformed_evidence(name: str, exc: BaseException) -> Check:
    """The ``fail`` of check ``name`` when the evidence made its verification raise.

    Evidence comes from the node; if an exception in a verifier became a ``skip`` (or stopped
    the other checks), a hostile node could turn ``failed`` into ``unverifiable`` by sending
    bytes that crash a parser. So the check that was running fails, saying why, and the
    caller goes on with the other checks.
    """
    return Check(name, "fail", f"malformed evidence: {type(exc).__name__}: {exc}"[:300])


def worst_status(statuses: Iterable[str]) -> Status:
    """The worst of several statuses (``failed`` > ``unverifiable`` > ``warning`` > ``verified``).

    This is the one status order of teelog: the entry's ``status`` (docs/entries.md), the
    monitor's re-verification and the explorer all combine statuses with it. An empty input is
    ``unverifiable`` (nothing was verified); a status that is not one of :data:`STATUSES` (read
    from an untrusted entry) counts as ``failed``, so that it can never raise a combined status.
    """
    worst = -1
    for status in statuses:
        worst = max(worst, STATUSES.index(status) if status in STATUSES else len(STATUSES) - 1)
    return STATUSES[worst] if worst >= 0 else "unverifiable"


def is_worse(old: str | None, new: str) -> bool:
    """Whether ``new`` is a worse status than ``old``, by :data:`STATUSES` (unknown ``old``:
    never worse, since there is nothing to compare with)."""
    if old not in STATUSES:
        return False
    return worst_status([old, new]) != old


@dataclass(slots=True)
class Verdict:
    """The verdict on one attestation (or one receipt): role, identity, checks, measurements.

    ``measurements`` is the JSON form of :class:`teelog.attestation.Measurements` (or ``None``
    for a receipt); it is carried so that the entry and the explorer show what was measured.
    """

    role: str
    model: str | None
    signing_address: str | None
    checks: list[Check] = field(default_factory=list)
    signing_algo: str | None = None
    measurements: dict[str, Any] | None = None

    @property
    def status(self) -> Status:
        return status_of(self.checks)

    def add(self, name: str, status: CheckStatus, detail: str, *, required: bool = True) -> Check:
        """Append a check and return it."""
        check = Check(name, status, detail, required)
        self.checks.append(check)
        return check

    def check(self, name: str) -> Check | None:
        """The check with this exact name, if any."""
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "model": self.model,
            "signing_address": self.signing_address,
            "signing_algo": self.signing_algo,
            "status": self.status,
            "checks": [c.to_json() for c in self.checks],
        }
        if self.measurements is not None:
            out["measurements"] = self.measurements
        return out


@dataclass(slots=True)
class Result:
    """The outcome of verifying one input (a report, a bundle, a quote or a signature).

    A bundle yields one :class:`Verdict` per attestation it contains. ``collateral_used`` maps
    each FMSPC (lowercase hex) to the exact collateral bytes used, so callers can store them.
    ``collateral_cited`` maps the SHA-256 of each document that was at hand but not valid at
    the verification time, and whose windows a ``tdx.collateral`` skip lists, to its bytes:
    the verdict depends on them too, so whoever stores the verdict stores them
    (:meth:`collateral_documents`).
    """

    attestations: list[Verdict] = field(default_factory=list)
    collateral_used: dict[str, bytes] = field(default_factory=dict)
    collateral_cited: dict[str, bytes] = field(default_factory=dict)

    def collateral_documents(self) -> dict[str, bytes]:
        """Every collateral document the verdicts depend on: used (by FMSPC), then cited (by
        SHA-256); re-verifying with exactly these reproduces the verdicts."""
        return {**self.collateral_used, **self.collateral_cited}

    @property
    def status(self) -> Status:
        return worst_status(v.status for v in self.attestations)

    def to_json(self) -> dict[str, Any]:
        """Exactly what ``teelog verify --json`` prints."""
        return {"status": self.status, "attestations": [v.to_json() for v in self.attestations]}
