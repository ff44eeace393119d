"""Verifying a DCAP quote "as of" a time: checks ``tdx.quote``, ``tdx.tcb``, ``tdx.collateral``
and ``tdx.debug``.

``tdx.quote`` always runs the quote's own signature checks (:mod:`.quote_signatures`: PCK chain
to Intel's pinned root, QE report signature and data, quote signature), with or without
collateral, so the signature part has one implementation and one outcome. Without collateral
that is all: a genuine quote passes ``tdx.quote`` with "TCB not evaluated" and ``tdx.tcb`` and
``tdx.collateral`` are ``skip`` (overall ``unverifiable``, never ``verified``). With collateral,
dcap-qvl then runs the full verification, adding what needs collateral (CRLs, QE identity, TCB
status); ``tdx.quote`` passes only when both agree.

dcap-qvl (``verify``) checks, in this order (dcap-qvl ``src/verify.rs::verify_impl``): the root
CA against its CRL; TCB info and QE identity signatures and dates; the PCK chain to Intel's
root; the QE report signature and hash; the QE identity policy; the ISV (TD) report signature;
then matches the platform TCB level and checks the attributes. It returns one error string at
the first failure, so we attribute the error to a check by where it arises: anything raised
after the signatures were verified (TCB matching, attribute policy) leaves ``tdx.quote``
passing. Nothing here is cached: a verdict is recomputed every time (the parsed collateral is
reused, which is data, not a verdict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import dcap_qvl

from .collateral import CollateralDoc
from .quote import Quote, SgxReport, TdReport
from .quote_signatures import quote_signature_check
from .times import rfc3339
from .verdict import Check

TCB_PASS = frozenset({"UpToDate"})
TCB_WARN = frozenset(
    {
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",
        "OutOfDate",
        "OutOfDateConfigurationNeeded",
    }
)
# Errors dcap-qvl raises only after every signature in the chain verified.
_AFTER_SIGNATURES = (
    "No matching TCB level",
    "TCB status is invalid",
    "TDX module identity",
    "Debug mode is enabled",
    "Reserved bits in TD attributes",
    "SEPT_VE_DISABLE is not enabled",
    "Invalid MR service TD",
    "Fmspc mismatch",
    "quote with non-",
)
_ATTRIBUTE_POLICY = (
    "Debug mode is enabled",
    "Reserved bits in TD attributes",
    "SEPT_VE_DISABLE is not enabled",
    "Invalid MR service TD",
)
_COLLATERAL_PROBLEMS = ("TCBInfo", "tcb_info", "QE Identity", "qe_identity", "Crl", "CRL")


@dataclass(slots=True)
class TdxResult:
    """The four ``tdx.*`` checks and what verification established."""

    checks: list[Check] = field(default_factory=list)
    tcb_status: str | None = None
    advisory_ids: list[str] = field(default_factory=list)
    collateral: CollateralDoc | None = None
    # Collateral at hand but not valid at the verification time, cited by the skip reason.
    cited: tuple[CollateralDoc, ...] = ()


def as_datetime(at: datetime | int | float) -> datetime:
    """A timezone-aware UTC datetime from a datetime (naive = UTC) or Unix seconds."""
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(at), tz=UTC)


def verify_tdx(
    quote: Quote,
    collateral: CollateralDoc | None,
    at: datetime | int | float,
    *,
    missing_reason: str | None = None,
) -> TdxResult:
    """Verify ``quote`` with ``collateral`` as of ``at``; never raises for a bad quote.

    ``tdx.quote`` is the quote's own signature checks in both cases (and, with collateral, also
    dcap-qvl's verdict). Without collateral, ``tdx.tcb`` and ``tdx.collateral`` are ``skip``
    with ``missing_reason`` (why no collateral was used); ``tdx.debug`` is always evaluated
    from the parsed attributes.
    """
    when = as_datetime(at)
    result = TdxResult(collateral=collateral)
    debug = debug_check(quote.report)
    signatures = quote_signature_check(quote, when)
    if collateral is None:
        reason = missing_reason or f"no collateral for FMSPC {quote.fmspc or 'unknown'}"
        result.checks += [
            signatures,
            Check("tdx.tcb", "skip", f"TCB status not evaluated: {reason}"),
            Check("tdx.collateral", "skip", reason),
            debug,
        ]
        return result
    qvl = dcap_qvl_checks(quote, collateral, when)
    result.checks += qvl.checks
    result.tcb_status, result.advisory_ids = qvl.tcb_status, qvl.advisory_ids
    if signatures.status == "fail":
        # The signature part decides alone: the same outcome as without collateral.
        theirs = result.checks[0]  # dcap-qvl's tdx.quote
        agrees = theirs.status == "fail" and theirs.detail != signatures.detail
        result.checks[0] = (
            Check("tdx.quote", "fail", f"{signatures.detail} (dcap-qvl: {theirs.detail})")
            if agrees
            else signatures
        )
        result.tcb_status, result.advisory_ids = None, []
        if result.checks[1].status != "fail":
            result.checks[1] = Check("tdx.tcb", "fail", f"not evaluated: {signatures.detail}")
    return result


def dcap_qvl_checks(quote: Quote, collateral: CollateralDoc, at: datetime) -> TdxResult:
    """dcap-qvl's full verification alone, as the four checks (``tdx.quote`` first).

    :func:`verify_tdx` combines it with the signature checks; it is public so that tests can
    show both give the same ``tdx.quote`` outcome on every real quote and mutation.
    """
    when = as_datetime(at)
    debug = debug_check(quote.report)
    result = TdxResult(collateral=collateral)
    fresh = collateral.freshness
    problem = fresh.problem_at(when)
    used = collateral.summary
    collateral_check = (
        Check("tdx.collateral", "fail", f"{problem}; {used}")
        if problem
        else Check("tdx.collateral", "pass", f"valid at {_iso(when)}: {used}")
    )
    try:
        report = dcap_qvl.verify(quote.raw, collateral.qvl, int(when.timestamp()))
    except Exception as exc:  # dcap-qvl reports every failure as ValueError
        message = _dcap_message(exc)
        result.checks = _checks_for_error(message, quote, collateral_check, debug)
        return result
    except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        message = f"dcap-qvl failed: {exc}"
        result.checks = _checks_for_error(message, quote, collateral_check, debug)
        return result

    status = str(report.status)
    advisories = [str(a) for a in report.advisory_ids]
    result.tcb_status, result.advisory_ids = status, advisories
    chain = (
        f"{'TDX' if quote.is_tdx else 'SGX'} quote v{quote.header.version}: PCK chain to the "
        f"Intel SGX Root CA, QE report and quote signatures valid (FMSPC {quote.fmspc}, "
        f"PPID {bytes(report.ppid).hex()})"
    )
    tcb = tcb_check(status, advisories)
    result.checks = [Check("tdx.quote", "pass", chain), tcb, collateral_check, debug]
    return result


def tcb_check(status: str, advisory_ids: list[str]) -> Check:
    """``tdx.tcb`` from Intel's TCB status: UpToDate passes, Revoked fails, the rest warn."""
    advisories = f"; advisories {', '.join(advisory_ids)}" if advisory_ids else ""
    if status in TCB_PASS:
        return Check("tdx.tcb", "pass", f"{status}{advisories}")
    if status in TCB_WARN:
        return Check("tdx.tcb", "warn", f"{status}{advisories}")
    if status == "Revoked":
        return Check("tdx.tcb", "fail", f"Revoked: the platform's TCB is revoked{advisories}")
    return Check("tdx.tcb", "fail", f"unknown TCB status {status!r}{advisories}")


def debug_check(report: TdReport | SgxReport) -> Check:
    """``tdx.debug``: fails when the TD (or enclave) runs in debug mode."""
    if isinstance(report, SgxReport):
        if report.debug:
            return Check("tdx.debug", "fail", "enclave ATTRIBUTES.DEBUG is set")
        return Check("tdx.debug", "pass", f"enclave attributes {report.attributes.hex()}")
    attrs = report.td_attributes
    flags = ", ".join(attrs.flags) or "none"
    if attrs.debug:
        return Check("tdx.debug", "fail", f"TD attribute DEBUG is set (attributes: {flags})")
    return Check("tdx.debug", "pass", f"not a debug TD (attributes: {flags})")


def _checks_for_error(
    message: str, quote: Quote, collateral_check: Check, debug: Check
) -> list[Check]:
    after_signatures = any(marker in message for marker in _AFTER_SIGNATURES)
    if after_signatures:
        quote_check = Check(
            "tdx.quote",
            "pass",
            f"PCK chain, QE report and quote signatures valid (FMSPC {quote.fmspc}); "
            f"dcap-qvl then stopped: {message}",
        )
    else:
        quote_check = Check("tdx.quote", "fail", message)
    if any(marker in message for marker in _ATTRIBUTE_POLICY):
        tcb = Check("tdx.tcb", "fail", f"not evaluated: {message}")
        if debug.status == "pass":
            debug = Check("tdx.debug", "fail", f"{message} ({debug.detail})")
    elif "TCB status is invalid" in message and "Revoked" in message:
        tcb = Check("tdx.tcb", "fail", f"Revoked: {message}")
    elif after_signatures:
        tcb = Check("tdx.tcb", "fail", message)
    else:
        tcb = Check("tdx.tcb", "fail", f"not evaluated: {message}")
    if collateral_check.status == "pass" and any(m in message for m in _COLLATERAL_PROBLEMS):
        collateral_check = Check("tdx.collateral", "fail", f"{message}; {collateral_check.detail}")
    return [quote_check, tcb, collateral_check, debug]


def _dcap_message(exc: BaseException) -> str:
    text = str(exc).strip().removeprefix("Verification failed: ")
    return " ".join(text.split())  # dcap-qvl's multi-line "Caused by" chains, on one line


def _iso(when: datetime) -> str:
    return rfc3339(when)
