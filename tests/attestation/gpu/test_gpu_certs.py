"""Device chains: pinned root, link cache that never caches a verdict, FWID extraction."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from gpu_helpers import AT, NVAT, NVLOCAL, near_payload
from teelog.attestation.gpu import certs
from teelog.attestation.gpu.errors import CertificateError


def _ders(i: int = 0) -> list[bytes]:
    pem = base64.b64decode(near_payload()["evidence_list"][i]["certificate"])
    return [
        c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem)
    ]


def test_shipped_roots_are_the_fixture_roots_with_the_pinned_spki():
    root = certs.device_root()
    fixture = x509.load_pem_x509_certificate((NVLOCAL / "verifier_device_root.pem").read_bytes())
    assert root == fixture
    assert certs.spki_sha256(root) == certs.DEVICE_ROOT_SPKI_SHA256
    rim_fixture = x509.load_pem_x509_certificate((NVLOCAL / "verifier_RIM_root.pem").read_bytes())
    assert certs.rim_root() == rim_fixture


def test_near_chains_end_in_a_byte_identical_copy_of_the_pinned_root():
    for i in range(8):
        ders = _ders(i)
        assert certs.load_certificate(ders[-1]) == certs.device_root()
        result = certs.verify_device_chain(ders, AT)
        assert result.ok, result.detail
        assert len(result.path) == 5


def test_cached_links_do_not_skip_the_validity_check():
    ders = _ders()
    assert certs.verify_device_chain(ders, AT).ok  # links now cached
    late = certs.verify_device_chain(ders, datetime(9999, 12, 31, 23, 59, 59, 999999, UTC))
    assert not late.ok
    assert "expired" in late.detail


def test_a_cached_link_does_not_vouch_for_a_modified_certificate():
    ders = _ders()
    assert certs.verify_device_chain(ders, AT).ok
    brom = bytearray(ders[1])
    brom[-3] ^= 0x01  # inside the signature value
    result = certs.verify_device_chain([ders[0], bytes(brom), *ders[2:]], AT)
    assert not result.ok
    assert "does not verify" in result.detail


def test_failed_links_are_not_cached():
    ders = _ders()
    broken = [ders[0], *ders[2:]]
    first = certs.verify_device_chain(broken, AT)
    second = certs.verify_device_chain(broken, AT)
    assert (first.ok, second.ok) == (False, False)
    assert first.detail == second.detail


def test_issuer_that_is_not_a_ca_breaks_the_chain():
    ders = _ders()
    # Leaf presented as the issuer of the leaf: no basicConstraints.
    result = certs.verify_chain(
        [certs.load_certificate(ders[0]), certs.load_certificate(ders[0])], certs.device_root(), AT
    )
    assert not result.ok
    assert "not a CA" in result.detail


def test_empty_and_overlong_chains_fail():
    assert not certs.verify_chain([], certs.device_root(), AT).ok
    leaf = certs.load_certificate(_ders()[0])
    assert "more than" in certs.verify_chain([leaf] * 9, certs.device_root(), AT).detail


def test_unparsable_der_is_a_certificate_error():
    with pytest.raises(CertificateError):
        certs.load_certificate(b"\x30\x03\x02\x01\x01")
    with pytest.raises(CertificateError):
        certs.load_pem_certificates(b"no pem here")


@pytest.mark.parametrize(
    ("chain", "report_fwid_prefix"),
    [
        (NVAT / "blackwellCertChain.txt", "d090cab1b6e6ffddca83"),
        (NVLOCAL / "hopper_550.90.07_CertChain.txt", "f5c384aebb579217a2c6"),
    ],
    ids=["blackwell-tcbinfo", "hopper"],
)
def test_leaf_fwid_from_both_extension_layouts(chain, report_fwid_prefix):
    leaf = certs.load_pem_certificates(chain.read_bytes())[0]
    fwid = certs.leaf_fwid(leaf)
    assert fwid is not None and len(fwid) == 48
    assert fwid.hex().startswith(report_fwid_prefix)


def test_non_leaf_certificates_carry_no_fwid():
    assert certs.leaf_fwid(certs.device_root()) is None


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x04\x00",  # not a SEQUENCE
        b"\x30\x03\x02\x01\x01",  # SEQUENCE without an FWID
        b"\x30\x05\xa6\x03\x02\x01\x01",  # [6] holding a non-SEQUENCE
        b"\x30\x84\x00\x00\x00\x01\x00",  # 4-byte length form
        b"\x30\x02\x02\x05",  # value overruns
    ],
)
def test_malformed_tcb_info_is_a_certificate_error(value):
    with pytest.raises(CertificateError):
        certs.tcb_info_fwid(value)


def test_fingerprint_is_sha256_of_der():
    der = _ders()[0]
    assert certs.fingerprint(certs.load_certificate(der)) == hashlib.sha256(der).digest()
