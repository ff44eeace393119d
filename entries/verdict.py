"""The logged verdict: how a report or a receipt becomes the checks an entry records.

The collector logs these, and the monitor recomputes them to check what was logged, so both
use these functions (docs/entries.md).

A report that cannot be read at all (not a known format, malformed quote) is still logged:
its entry carries one attestation with role ``report`` and a failed ``report.format`` check
saying why, so the log shows what the node sent and what was wrong with it. A crash of the
verifier itself (a bug on our side, not the node's) gives a ``skip`` check: ``unverifiable``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from teelog.attestation.collateral import Collateral
from teelog.attestation.errors import AttestationInputError
from teelog.attestation.verdict import Check, CheckStatus, Verdict

logger = logging.getLogger("teelog.entries")


@dataclass(slots=True)
class Verification:
    """A report's verification as an entry logs it: verdict JSON per attestation, the
    collateral used (FMSPC hex → bytes), and why the report could not be read, if it could not."""

    attestations: list[dict[str, Any]]
    collateral_used: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None  # the report could not be read at all


def _problem(name: str, status: CheckStatus, detail: str) -> dict[str, Any]:
    """The one attestation of a report that could not be verified at all (role ``report``)."""
    verdict = Verdict(role="report", model=None, signing_address=None)
    verdict.add(name, status, detail)
    out = verdict.to_json()
    out["measurements"] = None
    return out


def verify_report_bytes(
    collateral: Collateral, raw: Any, nonce: str | None, at: datetime
) -> Verification:
    """``attestation.verify_report`` of one report (its exact bytes, or parsed JSON), as
    check JSON. Never raises: unreadable input and verifier crashes become checks."""
    from teelog.attestation import verify_report

    try:
        result = verify_report(raw, nonce=nonce, at=at, collateral=collateral)
    except AttestationInputError as exc:
        return Verification([_problem("report.format", "fail", str(exc)[:2000])], {}, str(exc))
    except Exception as exc:  # must not stop the collector, nor hide the evidence as a skip
        logger.exception("verifier crashed")
        detail = f"malformed evidence: verification raised {type(exc).__name__}: {exc}"[:2000]
        return Verification([_problem("report.verifier", "fail", detail)], {}, detail)
    return Verification(
        attestations=[v.to_json() for v in result.attestations],
        collateral_used=result.collateral_documents(),  # used and cited: what reproduces it
    )


def receipt_signature_checks(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Checks of one feed item before its signer is looked up:

    ``receipt.text``               ``text`` ends in ``request_sha256:response_sha256``;
    ``receipt.signature.<algo>``   each signature over ``text`` (``attestation.verify_receipt``;
                                   its own ``receipt.signer`` is replaced by the collector's,
                                   which knows which log entry vouched for the key).
    """
    from teelog.attestation.receipt import parse_signed_text, verify_receipt

    checks: list[Check] = []
    text = item["text"]
    try:
        _, req, resp = parse_signed_text(text)
    except ValueError as exc:
        checks.append(Check("receipt.text", "fail", str(exc)))
    else:
        claimed = (item["request_sha256"].lower(), item["response_sha256"].lower())
        if (req, resp) == claimed:
            detail = "text signs the published request and response hashes"
            checks.append(Check("receipt.text", "pass", detail))
        else:
            detail = f"text signs {req}:{resp}, feed says {claimed[0]}:{claimed[1]}"
            checks.append(Check("receipt.text", "fail", detail))
    signed = 0
    for algo in ("ecdsa", "ed25519"):
        sig = item.get(algo)
        if not isinstance(sig, dict):
            continue
        signed += 1
        verdict = verify_receipt(
            {
                "text": text,
                "signature": sig["signature"],
                "signing_address": sig["signing_address"],
                "signing_algo": algo,
            }
        )
        check = verdict.check("receipt.signature")
        assert check is not None  # verify_receipt always runs it
        checks.append(Check(f"receipt.signature.{algo}", check.status, check.detail))
    if not signed:
        checks.append(Check("receipt.signature", "fail", "no signature"))
    return [c.to_json() for c in checks]
