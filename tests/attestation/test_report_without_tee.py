"""A report without a TDX quote (a development node, `tee: none`) is never verified."""

from __future__ import annotations

from datetime import UTC, datetime

from teelog.attestation import verify_report

AT = datetime(2026, 11, 22, tzinfo=UTC)
ADDRESS = "0x3C5acb6E66FB72cB7bf3b2141Ec2E1b92ecC6111"


def _dev_node_report(nonce: str) -> dict:
    """The shape teelog's node serves with --quote-provider none."""
    att = {
        "signing_address": ADDRESS,
        "signing_algo": "ecdsa",
        "request_nonce": nonce,
        "intel_quote": None,
        "nvidia_payload": None,
        "event_log": None,
        "info": {"tee": "none", "warning": "development node without a TEE"},
        "tee": "none",
    }
    return {**att, "all_attestations": [dict(att)]}


def test_a_dev_node_report_is_unverifiable_and_says_it_declares_no_tee() -> None:
    nonce = "ab" * 32
    result = verify_report(_dev_node_report(nonce), nonce=nonce, at=AT, collateral=None)
    [verdict] = result.attestations
    assert result.status == verdict.status == "unverifiable"
    assert verdict.signing_address == ADDRESS
    check = verdict.check("tdx.quote")
    assert check is not None and check.status == "skip"
    assert "declares no TEE" in check.detail
    assert verdict.measurements is None


def test_a_report_with_no_quote_and_no_tee_marker_is_unverifiable_too() -> None:
    report = _dev_node_report("cd" * 32)
    del report["info"], report["tee"], report["all_attestations"]
    [verdict] = verify_report(report, at=AT, collateral=None).attestations
    assert verdict.status == "unverifiable"
    assert "carries no TDX quote" in verdict.check("tdx.quote").detail


def test_a_quote_of_the_wrong_type_is_a_format_error_not_a_skip() -> None:
    import pytest
    from teelog.attestation import AttestationInputError

    report = _dev_node_report("ef" * 32)
    report["intel_quote"] = 42
    del report["all_attestations"]
    with pytest.raises(AttestationInputError, match="intel_quote must be"):
        verify_report(report, at=AT, collateral=None)
