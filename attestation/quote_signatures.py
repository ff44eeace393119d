"""A DCAP quote's signatures and PCK chain to Intel's root: what verifies without collateral.

A DCAP quote (Intel TDX DCAP Quote Generation Library, "Quote Format"; Intel SGX ECDSA Quote
Library API, "Quote Structure") carries its own chain of trust:

1. the header: attestation key type 2 (ECDSA-256 with P-256) and Intel's QE vendor ID;
2. the PCK certificate chain (certification data type 5, a PEM chain, inside the type-6 QE
   report certification data of TDX quotes): PCK certificate ← PCK Platform/Processor CA ←
   Intel SGX Root CA, the root pinned in ``data/intel_sgx_root_ca.pem``, every certificate
   inside its validity dates at the verification time;
3. the QE report, signed (ECDSA P-256, SHA-256) by the PCK certificate's key;
4. the QE report data, which binds the attestation key:
   ``SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero bytes``;
5. the quote signature by the attestation key over header ‖ body (v3, v4) or header ‖ body
   descriptor ‖ body (v5).

This is the same order as dcap-qvl (``src/verify.rs``: steps 3, 4, 5 and 7). What needs
collateral is not here: CRLs (revocation of the PCK and its CA), the QE identity (that the QE
is Intel's current enclave) and the TCB status. The same checks run whether or not collateral
is at hand (:mod:`.tdx`), so a forged or altered quote fails the same way in both cases.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from .quote import CERT_TYPE_PCK_CHAIN, Quote
from .times import rfc3339
from .verdict import Check

ROOT_CA_PEM = Path(__file__).resolve().parent / "data" / "intel_sgx_root_ca.pem"
# SHA-256 of the DER of Intel's SGX Root CA (CN=Intel SGX Root CA, valid 2018-05-21..2049-12-31),
# the last certificate of every PCK chain in tests/data/tdx and the same bytes as dcap-qvl's
# src/TrustedRootCA.der.
ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
QE_REPORT_DATA_OFFSET = 320  # report_data inside an SGX report (Intel SDM Vol. 3D §38.15)
PASS_DETAIL = "signatures and PCK chain to Intel's root verified; TCB not evaluated"


class QuoteSignatureError(Exception):
    """Why a quote's signatures or PCK chain do not verify (the ``tdx.quote`` fail detail)."""


@cache
def intel_root_ca() -> x509.Certificate:
    """The pinned Intel SGX Root CA; refuses a file whose digest is not :data:`ROOT_CA_SHA256`."""
    cert = x509.load_pem_x509_certificate(ROOT_CA_PEM.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    if digest != ROOT_CA_SHA256:
        raise RuntimeError(f"{ROOT_CA_PEM} has SHA-256 {digest}, expected {ROOT_CA_SHA256}")
    return cert


def quote_signature_check(quote: Quote, at: datetime) -> Check:
    """``tdx.quote`` from the quote's own signatures and chain, as of ``at``; never raises."""
    try:
        verify_quote_signatures(quote, at)
    except QuoteSignatureError as exc:
        return Check("tdx.quote", "fail", str(exc))
    return Check("tdx.quote", "pass", PASS_DETAIL)


def verify_quote_signatures(quote: Quote, at: datetime) -> x509.Certificate:
    """Run checks 1-5 of the module docstring; the verified PCK certificate, or raise
    :class:`QuoteSignatureError` with the first failure."""
    when = at if at.tzinfo else at.replace(tzinfo=UTC)
    header = quote.header
    if header.attestation_key_type != ATTESTATION_KEY_TYPE_ECDSA_P256:
        raise QuoteSignatureError(
            f"attestation key type {header.attestation_key_type} (only 2, ECDSA-256 with P-256, "
            "is defined for DCAP quotes)"
        )
    if header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise QuoteSignatureError(
            f"QE vendor ID {header.qe_vendor_id.hex()} is not Intel's "
            f"({INTEL_QE_VENDOR_ID.hex()})"
        )
    sig = quote.signature_data
    if sig.pck_cert_type != CERT_TYPE_PCK_CHAIN or quote.certification.pck_chain_pem is None:
        raise QuoteSignatureError(
            f"certification data type {sig.pck_cert_type} carries no PCK certificate chain "
            "(only type 5, a PEM chain, can be traced to Intel's root)"
        )
    if sig.qe_report is None or sig.qe_report_signature is None or sig.qe_auth_data is None:
        raise QuoteSignatureError("the quote carries no QE report")
    try:
        pck = _verify_pck_chain(quote.certification.pck_chain_pem, when)
        pck_key = pck.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # A certificate cryptography cannot read (bad extension, unknown key or signature
        # algorithm): malformed evidence, so the check fails rather than the verification.
        raise QuoteSignatureError(f"PCK certificate chain unreadable: {exc}") from exc
    if not isinstance(pck_key, ec.EllipticCurvePublicKey) or pck_key.curve.name != "secp256r1":
        raise QuoteSignatureError("the PCK certificate's key is not an ECDSA P-256 key")
    if not _ecdsa_valid(pck_key, sig.qe_report_signature, sig.qe_report):
        raise QuoteSignatureError("QE report signature is invalid for the PCK certificate's key")
    expected = hashlib.sha256(sig.attestation_key + sig.qe_auth_data).digest() + bytes(32)
    if sig.qe_report[QE_REPORT_DATA_OFFSET:] != expected:
        raise QuoteSignatureError(
            "QE report data is not SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero "
            "bytes: the attestation key is not the one the QE certified"
        )
    try:
        attestation_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + sig.attestation_key
        )
    except ValueError as exc:
        raise QuoteSignatureError(f"attestation key is not a P-256 point: {exc}") from exc
    if not _ecdsa_valid(attestation_key, sig.signature, quote.signed_bytes):
        what = "header ‖ body descriptor ‖ TD report" if header.version == 5 else (
            "header ‖ TD report" if quote.is_tdx else "header ‖ enclave report"
        )
        raise QuoteSignatureError(
            f"quote signature over {what} is invalid for the attestation key"
        )
    return pck


def _verify_pck_chain(pem: bytes, at: datetime) -> x509.Certificate:
    """PCK leaf ← intermediate(s) ← the pinned root, each directly issued by the next and
    valid at ``at``; the root may be embedded (as Intel's type-5 chains do) or left out."""
    try:
        # The chain is NUL-terminated in real quotes; PEM parsing stops at the last END line.
        certs = x509.load_pem_x509_certificates(pem.rstrip(b"\x00"))
    except ValueError as exc:
        raise QuoteSignatureError(f"PCK certificate chain is not a PEM chain: {exc}") from exc
    # PEM parsers skip text outside BEGIN/END blocks, so a chain with a broken armour line or
    # stray bytes would still parse, and two different quotes would carry the same chain. The
    # certification data must be exactly its certificates in PEM (64-column base64, "\n" line
    # ends, as Intel's PCCS and every real quote write them), optionally one NUL terminator.
    canonical = b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)
    if pem not in (canonical, canonical + b"\x00"):
        raise QuoteSignatureError(
            "PCK certificate chain is not exactly its PEM certificates: it carries bytes outside "
            "them or in another layout (a broken BEGIN/END line, stray text or padding)"
        )
    root = intel_root_ca()
    if certs and certs[-1].public_bytes(Encoding.DER) == root.public_bytes(Encoding.DER):
        certs = certs[:-1]
    if len(certs) < 2:
        raise QuoteSignatureError(
            f"PCK certificate chain has {len(certs)} certificate(s) below the root; a PCK "
            "certificate and its CA are needed"
        )
    path = [*certs, root]
    for i, cert in enumerate(path):
        name = _name(cert)
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise QuoteSignatureError(
                f"certificate {name} is valid {rfc3339(cert.not_valid_before_utc)}.."
                f"{rfc3339(cert.not_valid_after_utc)}, not at the verification time {rfc3339(at)}"
            )
        if i > 0 and not _is_ca(cert):
            raise QuoteSignatureError(f"certificate {name} issues {_name(path[i - 1])} but is "
                                      "not a CA")
        if i + 1 < len(path):
            try:
                cert.verify_directly_issued_by(path[i + 1])
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
                raise QuoteSignatureError(
                    f"certificate {name} is not signed by {_name(path[i + 1])}: "
                    f"{exc or type(exc).__name__}"
                ) from exc
    return certs[0]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _ecdsa_valid(key: ec.EllipticCurvePublicKey, raw_signature: bytes, data: bytes) -> bool:
    """An ECDSA-SHA256 signature given as r ‖ s (32 bytes each, big-endian), as in quotes."""
    r = int.from_bytes(raw_signature[:32], "big")
    s = int.from_bytes(raw_signature[32:64], "big")
    try:
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return repr(str(common[0].value)) if common else cert.subject.rfc4514_string()
