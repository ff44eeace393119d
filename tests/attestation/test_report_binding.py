"""report_data binding: the layouts in docs/attestation.md "report_data binding", on real and
derived data."""

from __future__ import annotations

import base64
import hashlib

from attestation_data import NEAR_NONCE, near_bundle
from teelog.attestation.binding import NO_NONCE, BindingClaims, signing_key_bytes, verify_binding
from teelog.attestation.quote import decode_quote_bytes, parse_quote

ADDRESS = "0x56d070df1c6be444b007839ef9cf67cec7c12b8b"


def _model():
    model = near_bundle()["model_attestations"][0]
    rd = parse_quote(decode_quote_bytes(model["intel_quote"])).report.report_data
    claims = BindingClaims(
        signing_address=model["signing_address"],
        signing_algo=model["signing_algo"],
        request_nonce=model["request_nonce"],
    )
    return rd, claims


def test_real_bundle_binds_address_and_nonce():
    rd, claims = _model()
    result = verify_binding(rd, claims, bytes.fromhex(NEAR_NONCE))
    assert result.report_data.status == "pass" and result.nonce.status == "pass"
    assert result.bound_nonce == result.gpu_nonce == bytes.fromhex(NEAR_NONCE)


def test_address_is_compared_case_insensitively():
    rd, claims = _model()
    upper = BindingClaims(ADDRESS.upper().replace("0X", "0x"), "ecdsa", claims.request_nonce)
    assert verify_binding(rd, upper, None).report_data.status == "pass"


def test_report_data_for_another_address_fails():
    rd, claims = _model()
    other = BindingClaims("0x" + "11" * 20, "ecdsa", claims.request_nonce)
    result = verify_binding(rd, other, None)
    assert result.report_data.status == "fail"


def test_report_data_for_another_nonce_fails():
    rd, claims = _model()
    other = BindingClaims(claims.signing_address, "ecdsa", "22" * 32)
    assert verify_binding(rd, other, None).report_data.status == "fail"


def test_expected_nonce_that_differs_fails_the_nonce_check():
    rd, claims = _model()
    result = verify_binding(rd, claims, b"\x33" * 32)
    assert result.report_data.status == "pass"
    assert result.nonce.status == "fail"


def test_without_an_expected_nonce_the_nonce_check_is_an_optional_skip():
    rd, claims = _model()
    check = verify_binding(rd, claims, None).nonce
    assert check.status == "skip" and check.detail == NO_NONCE and not check.required


def test_tls_fingerprint_variant():
    key = bytes.fromhex(ADDRESS[2:])
    fingerprint = hashlib.sha256(b"example SubjectPublicKeyInfo").digest()
    nonce = bytes(range(32))
    rd = hashlib.sha256(key + fingerprint).digest() + nonce
    claims = BindingClaims(ADDRESS, "ecdsa", nonce.hex(), tls_cert_fingerprint=fingerprint.hex())
    result = verify_binding(rd, claims, nonce)
    assert result.report_data.status == "pass" and "TLS" in result.report_data.detail
    wrong = BindingClaims(ADDRESS, "ecdsa", nonce.hex(), tls_cert_fingerprint="00" * 32)
    assert verify_binding(rd, wrong, nonce).report_data.status == "fail"


def test_ed25519_public_key_fills_the_first_32_bytes():
    key = bytes(range(1, 33))
    nonce = b"\x44" * 32
    claims = BindingClaims(key.hex(), "ed25519", nonce.hex())
    assert verify_binding(key + nonce, claims, nonce).report_data.status == "pass"
    assert signing_key_bytes(key.hex(), "ecdsa") is None


def test_chutes_variant_binds_nonce_and_e2e_key():
    nonce_hex = "ab" * 32
    pubkey = base64.b64encode(b"an e2e public key").decode()
    rd = hashlib.sha256((nonce_hex + pubkey).encode()).digest() + bytes(32)
    claims = BindingClaims(request_nonce=nonce_hex, e2e_pubkey=pubkey, chutes=True)
    result = verify_binding(rd, claims, bytes.fromhex(nonce_hex))
    assert result.report_data.status == "pass" and result.nonce.status == "pass"
    assert result.gpu_nonce == rd[:32]
    other = BindingClaims(request_nonce="cd" * 32, e2e_pubkey=pubkey, chutes=True)
    assert verify_binding(rd, other, None).report_data.status == "fail"


def test_legacy_address_only_layout_is_unverifiable_never_pass():
    key = bytes.fromhex(ADDRESS[2:])
    claims = BindingClaims(ADDRESS, "ecdsa", None)
    result = verify_binding(key.ljust(64, b"\0"), claims, None)
    assert result.report_data.status == "skip" and "legacy" in result.report_data.detail
    # With a nonce the caller expects, a layout without a nonce cannot satisfy it.
    assert verify_binding(key.ljust(64, b"\0"), claims, b"\x01" * 32).nonce.status == "fail"


def test_legacy_hashed_layout_is_unverifiable():
    claims = BindingClaims(ADDRESS, "ecdsa", None)
    rd = hashlib.sha512(b"app-data:" + ADDRESS.encode()).digest()
    assert verify_binding(rd, claims, None).report_data.status == "skip"


def test_missing_or_malformed_signing_address():
    rd, claims = _model()
    assert (
        verify_binding(
            rd, BindingClaims(request_nonce=claims.request_nonce), None
        ).report_data.status
        == "skip"
    )
    bad = BindingClaims("0xnothex", "ecdsa", claims.request_nonce)
    assert verify_binding(rd, bad, None).report_data.status == "fail"
