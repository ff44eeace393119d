"""tdx.* checks with dcap-qvl, at the pinned times of tests/data/tdx/README.md."""

from __future__ import annotations

import json

import pytest
from attestation_data import (
    AT_NEARMPC_2025,
    AT_NEARMPC_2026,
    AT_SGX,
    AT_V4_UPTODATE,
    AT_V5,
    REPORTS,
    V4_MRTD,
    V4_QE_REPORT_BYTE,
    V4_REPORT_DATA,
    V4_TD_ATTRIBUTES,
    collateral_doc,
    flip,
    quote_bytes,
)
from teelog.attestation.collateral import load_collateral
from teelog.attestation.quote import TdAttributes, decode_quote_bytes, parse_quote
from teelog.attestation.tdx import debug_check, tcb_check, verify_tdx
from teelog.attestation.verdict import status_of


def _checks(raw: bytes, stem: str, at: int):
    result = verify_tdx(parse_quote(raw), collateral_doc(stem), at)
    return result, {c.name: c for c in result.checks}


@pytest.mark.parametrize(
    ("quote", "stem", "at", "tcb", "advisories"),
    [
        (
            "dcapqvl_tdx_v4_uptodate.quote.bin",
            "dcapqvl_tdx_v4_uptodate",
            AT_V4_UPTODATE,
            "UpToDate",
            [],
        ),
        (
            "dcapqvl_nearmpc_tdx_v4.quote.hex",
            "dcapqvl_nearmpc_tdx_v4",
            AT_NEARMPC_2025,
            "UpToDate",
            [],
        ),
        ("nearmpc_2026_tdx_v4.quote.bin", "nearmpc_2026_tdx_v4", AT_NEARMPC_2026, "UpToDate", []),
    ],
)
def test_readme_uptodate_quotes_verify(quote, stem, at, tcb, advisories):
    result, checks = _checks(quote_bytes(quote), stem, at)
    assert (result.tcb_status, result.advisory_ids) == (tcb, advisories)
    assert [c.status for c in result.checks] == ["pass"] * 4
    assert status_of(result.checks) == "verified"
    assert "collateral sha256" in checks["tdx.collateral"].detail


def test_sgx_quote_warns_with_its_advisories():
    result, checks = _checks(quote_bytes("dcapqvl_sgx_v3.quote.bin"), "dcapqvl_sgx_v3", AT_SGX)
    assert result.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert result.advisory_ids == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert checks["tdx.tcb"].status == "warn"
    assert "INTEL-SA-00615" in checks["tdx.tcb"].detail
    assert status_of(result.checks) == "warning"


def test_legacy_quote_is_out_of_date_with_five_advisories():
    doc = json.loads((REPORTS / "privatemlsdk_e2e_quote_sample_2025-01.json").read_text())
    quote = parse_quote(decode_quote_bytes(doc["intel_quote"]))
    result = verify_tdx(quote, collateral_doc("dcapqvl_tdx_v5"), AT_V5)
    assert result.tcb_status == "OutOfDate"
    assert result.advisory_ids == [
        "INTEL-SA-01036",
        "INTEL-SA-01079",
        "INTEL-SA-01099",
        "INTEL-SA-01103",
        "INTEL-SA-01111",
    ]
    assert {c.name: c.status for c in result.checks}["tdx.tcb"] == "warn"


@pytest.mark.parametrize(
    ("quote", "stem", "at"),
    [
        ("dcapqvl_tdx_v5.quote.bin", "dcapqvl_tdx_v5", AT_V5),
        ("dcapqvl_tdx_v4_2024.quote.hex", "dcapqvl_tdx_v4_uptodate", AT_V4_UPTODATE),
        ("dcapqvl_tappd_tdx_v4_2024.quote.hex", "dcapqvl_tdx_v4_uptodate", AT_V4_UPTODATE),
    ],
)
def test_no_matching_tcb_level_fails_tcb_after_a_valid_signature(quote, stem, at):
    result, checks = _checks(quote_bytes(quote), stem, at)
    assert checks["tdx.quote"].status == "pass"
    assert checks["tdx.tcb"].status == "fail"
    assert "No matching TCB level found" in checks["tdx.tcb"].detail
    assert status_of(result.checks) == "failed"


def test_pck_certificate_issued_after_the_collateral_window_fails_the_quote():
    doc = json.loads((REPORTS / "dstack_verifier_fixture_tdx-lite-getquote.json").read_text())
    result = verify_tdx(
        parse_quote(decode_quote_bytes(doc["quote"])), collateral_doc("dcapqvl_tdx_v5"), AT_V5
    )
    checks = {c.name: c for c in result.checks}
    assert checks["tdx.quote"].status == "fail"
    assert "CertNotValidYet" in checks["tdx.quote"].detail


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (V4_MRTD, "ISV enclave report signature is invalid"),
        (V4_REPORT_DATA, "ISV enclave report signature is invalid"),
        (10, "ISV enclave report signature is invalid"),
        (V4_QE_REPORT_BYTE, "QE report hash mismatch"),
        (640, "ISV enclave report signature is invalid"),  # the quote's ECDSA signature
    ],
)
def test_byte_flips_fail_the_quote_check(offset, message):
    raw = flip(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"), offset)
    result, checks = _checks(raw, "dcapqvl_tdx_v4_uptodate", AT_V4_UPTODATE)
    assert checks["tdx.quote"].status == "fail"
    assert message in checks["tdx.quote"].detail
    assert status_of(result.checks) == "failed"


def test_byte_700_is_the_attestation_key_and_the_qe_report_follows_it():
    # The README calls byte 700 "QE report"; it is the attestation key (636+64..636+128), which
    # the QE report's report_data hashes, hence "QE report hash mismatch".
    q = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    assert q.signature_data_offset == 632
    assert 632 + 4 + 64 <= V4_QE_REPORT_BYTE < 632 + 4 + 128
    assert q.certification.qe_report_offset == 632 + 4 + 128 + 6


@pytest.mark.parametrize("inside", [0, 100, 320, 383, 384 + 10])
def test_flips_inside_the_qe_report_and_its_signature_fail(inside):
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    offset = parse_quote(raw).certification.qe_report_offset + inside
    result, checks = _checks(flip(raw, offset), "dcapqvl_tdx_v4_uptodate", AT_V4_UPTODATE)
    assert checks["tdx.quote"].status == "fail"
    assert status_of(result.checks) == "failed"


def test_debug_td_fails_both_signature_and_debug_checks():
    raw = flip(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"), V4_TD_ATTRIBUTES, 0x01)
    result, checks = _checks(raw, "dcapqvl_tdx_v4_uptodate", AT_V4_UPTODATE)
    assert checks["tdx.debug"].status == "fail"
    assert "DEBUG" in checks["tdx.debug"].detail
    assert checks["tdx.quote"].status == "fail"
    assert status_of(result.checks) == "failed"


def test_debug_check_on_a_parsed_report_alone():
    report = parse_quote(quote_bytes("nearmpc_2026_tdx_v4.quote.bin")).report
    assert debug_check(report).status == "pass"
    debug_report = type(report)(
        **{
            **{f: getattr(report, f) for f in report.__slots__},
            "td_attributes": TdAttributes(report.td_attributes.value | 1),
        }
    )
    check = debug_check(debug_report)
    assert check.status == "fail" and "DEBUG is set" in check.detail


def test_sgx_debug_enclave_fails_the_debug_check():
    report = parse_quote(quote_bytes("dcapqvl_sgx_v3.quote.bin")).report
    debug = type(report)(
        report.cpu_svn,
        bytes([report.attributes[0] | 2]) + report.attributes[1:],
        report.mr_enclave,
        report.mr_signer,
        report.report_data,
    )
    assert debug_check(debug).status == "fail"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("UpToDate", "pass"),
        ("SWHardeningNeeded", "warn"),
        ("ConfigurationNeeded", "warn"),
        ("ConfigurationAndSWHardeningNeeded", "warn"),
        ("OutOfDate", "warn"),
        ("OutOfDateConfigurationNeeded", "warn"),
        ("Revoked", "fail"),
        ("SomethingNew", "fail"),
    ],
)
def test_tcb_status_policy(status, expected):
    check = tcb_check(status, ["INTEL-SA-00001"])
    assert check.status == expected
    assert "INTEL-SA-00001" in check.detail


@pytest.mark.parametrize(
    ("at", "fragment"),
    [
        (1752919236, "PCK CRL expired"),  # window end + 1 s
        (1752969600, "expired"),  # past tcb_info.nextUpdate
        (1735689600, "not yet valid"),  # before every issue date
    ],
)
def test_expired_and_not_yet_valid_collateral_fails(at, fragment):
    result, checks = _checks(
        quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"), "dcapqvl_tdx_v4_uptodate", at
    )
    assert checks["tdx.collateral"].status == "fail"
    assert fragment in checks["tdx.collateral"].detail
    assert checks["tdx.quote"].status == "fail"
    assert status_of(result.checks) == "failed"


def test_collateral_edited_inside_tcb_info_fails_quote_and_collateral():
    obj = json.loads((collateral_doc("dcapqvl_tdx_v4_uptodate")).canonical)
    obj["tcb_info"] = obj["tcb_info"].replace(
        '"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":18'
    )
    edited = load_collateral(obj)
    result = verify_tdx(
        parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")), edited, AT_V4_UPTODATE
    )
    checks = {c.name: c for c in result.checks}
    assert "Signature is invalid for tcb_info" in checks["tdx.quote"].detail
    assert checks["tdx.collateral"].status == "fail"
    assert status_of(result.checks) == "failed"


@pytest.mark.parametrize("field", ["tcb_info_signature", "qe_identity_signature", "pck_crl"])
def test_collateral_byte_flips_fail(field):
    obj = json.loads((collateral_doc("dcapqvl_tdx_v4_uptodate")).canonical)
    value = obj[field]
    middle = len(value) // 2
    obj[field] = value[:middle] + ("0" if value[middle] != "0" else "1") + value[middle + 1 :]
    try:
        edited = load_collateral(obj)
    except ValueError:
        return  # a CRL that no longer parses is rejected before verification: also safe
    result = verify_tdx(
        parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")), edited, AT_V4_UPTODATE
    )
    assert status_of(result.checks) == "failed"


def test_sgx_collateral_for_a_tdx_quote_fails():
    result = verify_tdx(
        parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")),
        collateral_doc("dcapqvl_sgx_v3"),
        AT_V4_UPTODATE,
    )
    assert status_of(result.checks) == "failed"


def test_without_collateral_the_signatures_pass_and_the_verdict_stays_unverifiable():
    result = verify_tdx(
        parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")), None, AT_V4_UPTODATE
    )
    checks = {c.name: c for c in result.checks}
    assert [checks[n].status for n in ("tdx.quote", "tdx.tcb", "tdx.collateral")] == [
        "pass",
        "skip",
        "skip",
    ]
    assert checks["tdx.quote"].detail == (
        "signatures and PCK chain to Intel's root verified; TCB not evaluated"
    )
    assert result.tcb_status is None
    assert "b0c06f000000" in checks["tdx.collateral"].detail
    assert checks["tdx.debug"].status == "pass"
    assert status_of(result.checks) == "unverifiable"
