"""tdx.quote from the quote's own signatures and PCK chain, with and without collateral.

Every real quote in tests/data passes; a mutation of any signed region (or of the chain that
certifies the signer) fails, with identical ``tdx.quote`` outcomes whether collateral is at
hand or not, and dcap-qvl alone reaches the same outcome on the same bytes. Verification times
are the pinned ones of tests/data/tdx/README.md.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable

import pytest
from attestation_data import (
    AT_NEAR_GATEWAY,
    AT_NEAR_MODEL,
    AT_NEARMPC_2025,
    AT_NEARMPC_2026,
    AT_SGX,
    AT_V4_UPTODATE,
    AT_V5,
    DATA,
    REPORTS,
    TDX,
    collateral_doc,
    near_bundle,
    quote_bytes,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from teelog.attestation.errors import QuoteFormatError
from teelog.attestation.quote import decode_quote_bytes, parse_quote
from teelog.attestation.quote_signatures import (
    PASS_DETAIL,
    ROOT_CA_PEM,
    ROOT_CA_SHA256,
    intel_root_ca,
    quote_signature_check,
)
from teelog.attestation.tdx import as_datetime, dcap_qvl_checks, verify_tdx
from teelog.attestation.verdict import status_of


def _report_quote(path: str, key: str) -> bytes:
    return decode_quote_bytes(json.loads((REPORTS / path).read_text())[key])


def _near(role: str, key: str = "intel_quote") -> bytes:
    doc = near_bundle()
    att = doc["gateway_attestation"] if role == "gateway" else doc["model_attestations"][0]
    if role == "compose_manager":
        att = att["compose_manager_attestation"]
    return decode_quote_bytes(att[key])


# Every real quote in tests/data: (name, bytes, time, collateral valid for it then or None).
REAL_QUOTES: list[tuple[str, Callable[[], bytes], int, str | None]] = [
    ("tdx_v4_uptodate", lambda: quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"),
     AT_V4_UPTODATE, "dcapqvl_tdx_v4_uptodate"),
    ("tdx_v5", lambda: quote_bytes("dcapqvl_tdx_v5.quote.bin"), AT_V5, "dcapqvl_tdx_v5"),
    ("sgx_v3", lambda: quote_bytes("dcapqvl_sgx_v3.quote.bin"), AT_SGX, "dcapqvl_sgx_v3"),
    ("nearmpc_2025", lambda: quote_bytes("dcapqvl_nearmpc_tdx_v4.quote.hex"), AT_NEARMPC_2025,
     "dcapqvl_nearmpc_tdx_v4"),
    ("nearmpc_2026", lambda: quote_bytes("nearmpc_2026_tdx_v4.quote.bin"), AT_NEARMPC_2026,
     "nearmpc_2026_tdx_v4"),
    ("tdx_v4_2024", lambda: quote_bytes("dcapqvl_tdx_v4_2024.quote.hex"), AT_V4_UPTODATE,
     "dcapqvl_tdx_v4_uptodate"),
    ("tappd_2024", lambda: quote_bytes("dcapqvl_tappd_tdx_v4_2024.quote.hex"), AT_V4_UPTODATE,
     "dcapqvl_tdx_v4_uptodate"),
    ("vllmproxy_getquote", lambda: _report_quote("vllmproxy_sample_dstack_getquote.json", "quote"),
     AT_NEARMPC_2025, "dcapqvl_nearmpc_tdx_v4"),
    ("privatemlsdk_2025", lambda: _report_quote("privatemlsdk_e2e_quote_sample_2025-01.json",
                                                "intel_quote"), AT_V5, "dcapqvl_tdx_v5"),
    ("privatemlsdk_readme_b64", lambda: decode_quote_bytes(
        (DATA / "gpu/private-ml-sdk-e2e-readme-2025-01/intel_quote.b64.txt").read_bytes()),
     AT_V5, "dcapqvl_tdx_v5"),
    ("dstack_verifier_quote_report", lambda: _report_quote(
        "dstack_verifier_fixture_quote-report.json", "quote"), AT_V5, "dcapqvl_tdx_v5"),
    # PCK certificate issued 2026-04-15, after every archived window for its FMSPC.
    ("dstack_verifier_tdx_lite", lambda: _report_quote(
        "dstack_verifier_fixture_tdx-lite-getquote.json", "quote"), AT_NEARMPC_2026, None),
    ("dstack_simulator_0.5.3", lambda: decode_quote_bytes(
        (REPORTS / "dstack_simulator_v0.5.3/quote.hex").read_bytes()), AT_V4_UPTODATE,
     "dcapqvl_tdx_v4_uptodate"),
    ("near_gateway", lambda: _near("gateway"), AT_NEAR_GATEWAY, "nearmpc_2026_tdx_v4"),
    ("near_model", lambda: _near("model"), AT_NEAR_MODEL, "dcapqvl_tdx_v5"),
    ("near_compose_manager", lambda: _near("compose_manager", "quote"), AT_NEAR_MODEL,
     "dcapqvl_tdx_v5"),
]
# The bases of the mutations: quotes with collateral valid at their time (v3, v4, v5).
MUTATION_BASES = ["tdx_v4_uptodate", "tdx_v5", "sgx_v3", "nearmpc_2026", "near_model"]
_BY_NAME = {name: (load, at, stem) for name, load, at, stem in REAL_QUOTES}


def _quote_check(raw: bytes, at: int, stem: str | None):
    doc = collateral_doc(stem) if stem else None
    return {c.name: c for c in verify_tdx(parse_quote(raw), doc, at).checks}["tdx.quote"]


def test_the_pinned_root_is_intels_sgx_root_ca_and_ends_every_real_chain():
    root = intel_root_ca()
    der = root.public_bytes(Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == ROOT_CA_SHA256
    assert hashlib.sha256(der).hexdigest() == (
        "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
    )
    assert root.subject.rfc4514_string() == (
        "C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX Root CA"
    )
    assert ROOT_CA_PEM.name == "intel_sgx_root_ca.pem"
    for name, load, _, _ in REAL_QUOTES:
        pem = parse_quote(load()).certification.pck_chain_pem
        last = x509.load_pem_x509_certificates(pem.rstrip(b"\0"))[-1]
        assert last.public_bytes(Encoding.DER) == der, name


@pytest.mark.parametrize(
    ("name", "load", "at", "stem"), REAL_QUOTES, ids=[q[0] for q in REAL_QUOTES]
)
def test_every_real_quote_passes_without_collateral_and_stays_unverifiable(name, load, at, stem):
    result = verify_tdx(parse_quote(load()), None, at)
    checks = {c.name: c for c in result.checks}
    assert checks["tdx.quote"].status == "pass"
    assert checks["tdx.quote"].detail == PASS_DETAIL
    assert checks["tdx.tcb"].status == "skip" and checks["tdx.collateral"].status == "skip"
    assert status_of(result.checks) == "unverifiable"


@pytest.mark.parametrize(
    ("name", "load", "at", "stem"),
    [q for q in REAL_QUOTES if q[3]],
    ids=[q[0] for q in REAL_QUOTES if q[3]],
)
def test_every_real_quote_passes_with_collateral_and_dcap_qvl_agrees(name, load, at, stem):
    quote = parse_quote(load())
    assert _quote_check(quote.raw, at, stem).status == "pass"
    alone = {c.name: c for c in dcap_qvl_checks(quote, collateral_doc(stem), at).checks}
    assert alone["tdx.quote"].status == "pass", alone["tdx.quote"].detail


def _flip_at(offset: Callable[[bytes], int]) -> Callable[[bytes], bytes]:
    def mutate(raw: bytes) -> bytes:
        out = bytearray(raw)
        out[offset(raw)] ^= 0x01
        return bytes(out)

    return mutate


def _q(raw: bytes):
    return parse_quote(raw)


def _qe(raw: bytes) -> int:
    return _q(raw).certification.qe_report_offset


def _pem_char(cert_index: int) -> Callable[[bytes], bytes]:
    """Change one base64 character in the middle of the n-th certificate of the PCK chain."""

    def mutate(raw: bytes) -> bytes:
        pem = _q(raw).certification.pck_chain_pem
        start = raw.find(pem)
        marker = b"-----BEGIN CERTIFICATE-----\n"
        pos = -1
        for _ in range(cert_index + 1):
            pos = pem.find(marker, pos + 1)
        at = start + pos + len(marker) + 300
        out = bytearray(raw)
        out[at] = ord("B") if out[at] != ord("B") else ord("C")
        return bytes(out)

    return mutate


def _pem_armour(cert_index: int, line_end: bool = False) -> Callable[[bytes], bytes]:
    """Break the n-th certificate's BEGIN line ("-----" → ",----"), or its first line end
    ("\n" → "\v"): PEM parsers skip what is outside a block, so only a strict reading of
    the certification data notices."""

    def mutate(raw: bytes) -> bytes:
        pem = _q(raw).certification.pck_chain_pem
        start = raw.find(pem)
        marker = b"-----BEGIN CERTIFICATE-----"
        pos = -1
        for _ in range(cert_index + 1):
            pos = pem.find(marker, pos + 1)
        at = start + pos + (len(marker) if line_end else 0)
        out = bytearray(raw)
        out[at] ^= 0x01
        return bytes(out)

    return mutate


MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "header_pce_svn": _flip_at(lambda raw: 10),
    "header_user_data": _flip_at(lambda raw: 40),
    "report_mrtd_or_mrenclave": _flip_at(
        lambda raw: _q(raw).body_offset + (136 if _q(raw).is_tdx else 64)
    ),
    "report_data": _flip_at(lambda raw: _q(raw).report_data_offset + 5),
    "report_last_byte": _flip_at(lambda raw: _q(raw).signature_data_offset - 1),
    "quote_signature": _flip_at(lambda raw: _q(raw).signature_data_offset + 4 + 10),
    "attestation_key": _flip_at(lambda raw: _q(raw).signature_data_offset + 4 + 64 + 10),
    "qe_report": _flip_at(lambda raw: _qe(raw) + 100),
    "qe_report_data": _flip_at(lambda raw: _qe(raw) + 320 + 3),
    "qe_report_signature": _flip_at(lambda raw: _qe(raw) + 384 + 10),
    "qe_auth_data": _flip_at(lambda raw: _qe(raw) + 384 + 64 + 2 + 5),
    "pck_leaf": _pem_char(0),
    "pck_ca": _pem_char(1),
    "pck_root": _pem_char(2),
    "pck_root_armour": _pem_armour(2),
    "pck_ca_line_end": _pem_armour(1, line_end=True),
}
# dcap-qvl alone accepts these: it anchors on its own copy of the root and reads PEM leniently.
DCAP_QVL_IGNORES = {"pck_root", "pck_root_armour", "pck_ca_line_end"}


@pytest.mark.parametrize("base", MUTATION_BASES)
@pytest.mark.parametrize("region", list(MUTATIONS))
def test_a_mutated_signed_region_fails_identically_with_and_without_collateral(base, region):
    load, at, stem = _BY_NAME[base]
    raw = MUTATIONS[region](load())
    quote = parse_quote(raw)
    without = _quote_check(raw, at, None)
    with_collateral = _quote_check(raw, at, stem)
    assert without.status == with_collateral.status == "fail", (without, with_collateral)
    assert with_collateral.detail.startswith(without.detail)
    # dcap-qvl alone, on the same bytes and collateral, rejects it too, except for a damaged
    # copy of the root inside the chain: dcap-qvl anchors on its own copy and ignores the
    # embedded one, teelog requires the chain to end with Intel's root (or to leave it out).
    alone = {c.name: c for c in dcap_qvl_checks(quote, collateral_doc(stem), at).checks}
    expected = "pass" if region in DCAP_QVL_IGNORES else "fail"
    assert alone["tdx.quote"].status == expected, alone["tdx.quote"].detail
    assert status_of(verify_tdx(quote, None, at).checks) == "failed"


def test_the_failure_names_what_did_not_verify():
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    reasons = {
        region: _quote_check(MUTATIONS[region](raw), AT_V4_UPTODATE, None).detail
        for region in ("report_data", "qe_report", "qe_auth_data", "pck_leaf")
    }
    assert reasons["report_data"] == (
        "quote signature over header ‖ TD report is invalid for the attestation key"
    )
    assert reasons["qe_report"] == "QE report signature is invalid for the PCK certificate's key"
    assert reasons["qe_auth_data"].startswith(
        "QE report data is not SHA-256(attestation key ‖ QE authentication data)"
    )
    assert "is not signed by 'Intel SGX PCK Platform CA'" in reasons["pck_leaf"]


def test_the_v5_signature_covers_the_body_descriptor():
    raw = quote_bytes("dcapqvl_tdx_v5.quote.bin")
    # Body type 3 -> 2 with the TD report 1.5 size: the quote no longer parses as declared.
    altered = bytearray(raw)
    struct.pack_into("<H", altered, 48, 2)
    with pytest.raises(QuoteFormatError, match="declares size 648, expected 584"):
        parse_quote(bytes(altered))
    check = quote_signature_check(parse_quote(raw), as_datetime(AT_V5))
    assert check.status == "pass"
    assert parse_quote(raw).signed_bytes == raw[: 48 + 6 + 648]


@pytest.mark.parametrize(
    ("at", "fragment"),
    [
        (1738800000, "'Intel SGX PCK Certificate' is valid 2025-02-06T23:25:51Z..2032-02-06T"),
        (1970000000, "'Intel SGX PCK Certificate' is valid 2025-02-06T23:25:51Z..2032-02-06T"),
    ],
)
def test_a_pck_chain_outside_its_validity_dates_fails(at, fragment):
    check = _quote_check(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"), at, None)
    assert check.status == "fail" and fragment in check.detail


def test_a_chain_whose_root_is_not_intels_fails():
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    check = _quote_check(MUTATIONS["pck_root"](raw), AT_V4_UPTODATE, None)
    assert check.status == "fail"
    assert "Intel SGX Root CA" in check.detail


def test_a_foreign_qe_vendor_fails():
    raw = bytearray(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    raw[12] ^= 0xFF
    check = _quote_check(bytes(raw), AT_V4_UPTODATE, None)
    assert check.status == "fail" and "is not Intel's" in check.detail


# §7: a quote is exactly what its length fields delimit.


def test_zero_padding_after_the_signature_data_is_not_part_of_the_quote():
    padded = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    quote = parse_quote(padded)
    assert len(padded) == 5006 and len(quote.raw) == 4936 and padded[4936:] == bytes(70)
    assert quote.sha256 == hashlib.sha256(padded[:4936]).hexdigest()
    for variant in (padded[:4936], padded + bytes(1), padded + bytes(500)):
        assert parse_quote(variant).sha256 == quote.sha256
    assert quote_signature_check(parse_quote(padded[:4936]), as_datetime(AT_V4_UPTODATE)).status \
        == "pass"


@pytest.mark.parametrize("name", ["dcapqvl_tdx_v4_uptodate.quote.bin", "dcapqvl_tdx_v5.quote.bin",
                                  "dcapqvl_sgx_v3.quote.bin"])
@pytest.mark.parametrize("tail", [b"\x01", b"\x00" * 69 + b"\x01", b"garbage"])
def test_trailing_bytes_that_are_not_zero_padding_are_malformed(name, tail):
    with pytest.raises(QuoteFormatError, match=r"follow the \d+-byte signature data"):
        parse_quote(quote_bytes(name) + tail)


def _set_u32(raw: bytes, offset: int, delta: int) -> bytes:
    out = bytearray(raw)
    (value,) = struct.unpack_from("<I", out, offset)
    struct.pack_into("<I", out, offset, value + delta)
    return bytes(out)


@pytest.mark.parametrize("delta", [-1, 1, 70])
def test_an_inconsistent_signature_data_length_is_malformed(delta):
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    with pytest.raises(QuoteFormatError):
        parse_quote(_set_u32(raw, parse_quote(raw).signature_data_offset, delta))


@pytest.mark.parametrize("delta", [-1, 1])
@pytest.mark.parametrize("which", ["outer", "inner"])
def test_an_inconsistent_certification_data_size_is_malformed(which, delta):
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    quote = parse_quote(raw)
    outer = quote.signature_data_offset + 4 + 128 + 2  # type-6 size field
    (auth_len,) = struct.unpack_from("<H", raw, quote.certification.qe_report_offset + 448)
    inner = quote.certification.qe_report_offset + 448 + 2 + auth_len + 2  # type-5 size field
    with pytest.raises(QuoteFormatError, match="declares"):
        parse_quote(_set_u32(raw, outer if which == "outer" else inner, delta))


def test_an_sgx_certification_data_size_must_fill_the_signature_data():
    raw = quote_bytes("dcapqvl_sgx_v3.quote.bin")
    quote = parse_quote(raw)
    (auth_len,) = struct.unpack_from("<H", raw, quote.certification.qe_report_offset + 448)
    size_field = quote.certification.qe_report_offset + 448 + 2 + auth_len + 2
    with pytest.raises(QuoteFormatError, match="certification data declares"):
        parse_quote(_set_u32(raw, size_field, -1))


def test_every_quote_file_of_tests_data_tdx_is_among_the_real_quotes_checked_here():
    checked = {parse_quote(load()).sha256 for _, load, _, _ in REAL_QUOTES}
    files = {parse_quote(quote_bytes(p.name)).sha256 for p in TDX.glob("*.quote.*")}
    assert len(files) == 7 and files <= checked


def test_a_chain_that_is_not_pem_fails_the_check_instead_of_raising():
    raw = bytearray(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    pem = parse_quote(bytes(raw)).certification.pck_chain_pem
    start = bytes(raw).find(pem)
    body = start + len(b"-----BEGIN CERTIFICATE-----\n")
    raw[body : body + 8] = b"********"  # not base64: the leaf no longer decodes
    check = _quote_check(bytes(raw), AT_V4_UPTODATE, None)
    assert check.status == "fail" and "PCK certificate chain" in check.detail


def test_a_report_whose_quote_has_trailing_bytes_fails_as_unreadable():
    from teelog.attestation import verify_report

    doc = {"model_attestations": [near_bundle()["model_attestations"][0]]}
    doc["model_attestations"][0]["intel_quote"] += "01"
    result = verify_report(doc, at=AT_NEAR_MODEL, collateral=[collateral_doc("dcapqvl_tdx_v5")])
    (check,) = [c for c in result.attestations[0].checks if c.name == "tdx.quote"]
    assert check.status == "fail"
    assert check.detail.startswith("quote unreadable: 71 bytes follow the")
    assert result.status == "failed"
