"""The checks evidence must pass before any policy is asked (issue 11: "the binding and quote
checks always have to pass").

- every evidence: ``binding.report_data`` passes, and no check failed (a broken GPU report, a
  tampered event log, unreadable device evidence all refuse, whatever the policy says);
- ``tdx``: also ``tdx.quote``, ``tdx.collateral`` and ``tdx.debug`` pass (``tdx.tcb`` may warn:
  whether an out-of-date TCB is acceptable is the policy's ``tcb_status`` condition).

Informative skips (no event log, no RIMs) do not refuse; they leave claims absent.
"""

from __future__ import annotations

from teelog.attestation import Check

from .evidence import EvidenceResult

MUST_PASS = {
    "tdx": ("binding.report_data", "tdx.quote", "tdx.collateral", "tdx.debug"),
    "sample": ("binding.report_data",),
}


def gate_failures(evidence: EvidenceResult) -> list[Check]:
    """The checks that refuse this evidence (empty: it may go on to a policy)."""
    checks = evidence.verdict.checks
    out = [c for c in checks if c.status == "fail"]
    for name in MUST_PASS[evidence.tee]:
        check = next((c for c in checks if c.name == name), None)
        if check is None:
            out.append(Check(name, "fail", "not evaluated"))
        elif check.status != "pass" and check not in out:
            out.append(Check(name, "fail", f"{check.status}: {check.detail}"))
    return out
