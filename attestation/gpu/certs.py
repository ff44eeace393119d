"""GPU device certificate chains: path to the pinned NVIDIA root, and the leaf's FWID.

A GPU's chain (docs/attestation.md "What gpu.* checks prove", ``gpu.chain``), leaf first::

    GH100 A01 GSP FMC LF          per device, attestation key, FWID extension
    GH100 A01 GSP BROM            per device CA
    NVIDIA GH100 Provisioner ICA 1
    NVIDIA GH100 Identity
    NVIDIA Device Identity CA     self-signed root, pinned (never trusted from the chain)

:func:`verify_device_chain` checks every link (issuer name, ECDSA signature, CA basic
constraints and key usage) and every validity period "as of" a given time, up to the pinned
root. Revocation (OCSP/CRL) is not checked: it needs network or stored responses.

Speed: each link's signature check is a pure function of the two certificates' bytes, so
successful link checks are cached by ``(sha256(child DER), sha256(issuer DER))`` — the
per-node and NVIDIA-wide certificates repeat in every bundle. Validity periods are checked on
every call; results (verdicts) are never cached.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..times import rfc3339
from .errors import CertificateError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEVICE_ROOT_PEM = DATA_DIR / "nvidia_device_root.pem"
RIM_ROOT_PEM = DATA_DIR / "nvidia_rim_root.pem"
# SPKI SHA-256 of the pinned roots (fixtures README, nv-local-gpu-verifier 2.7.3 certs/).
DEVICE_ROOT_SPKI_SHA256 = "a90c4eb5acfd3e3d03a25db6a26b84f720ad0503196c627c21ddd48dd85b06a4"
RIM_ROOT_SPKI_SHA256 = "dec1dc316477aa851eebdf51327ae9f864bc8d89254657ed1e7eb9168af1e1a3"

# TCG DICE TcbInfo (Hopper) and NVIDIA's Blackwell variant of it (TCG DICE Attestation
# Architecture §6.1.1; nv-local-gpu-verifier ``CcAdminUtils.extract_fwid``).
OID_TCB_INFO = x509.ObjectIdentifier("2.23.133.5.4.1")
OID_TCB_INFO_BLACKWELL = x509.ObjectIdentifier("2.23.133.5.4.1.1")

_MAX_CHAIN = 8
_LINK_CACHE_SIZE = 8192
_link_cache: dict[tuple[bytes, bytes], None] = {}
_link_lock = threading.Lock()


def _fully_parsed(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` after touching every field we use: ``cryptography`` parses them lazily, and a
    malformed one must fail here, as a :class:`CertificateError`, not later in a check."""
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        list(cert.extensions)
        cert.public_key()
        cert.signature_hash_algorithm  # noqa: B018
        cert.not_valid_before_utc  # noqa: B018
        cert.not_valid_after_utc  # noqa: B018
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"malformed certificate: {exc}") from None
    return cert


@lru_cache(maxsize=4096)
def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate (cached by its bytes: a parsed certificate is not a verdict)."""
    try:
        return _fully_parsed(x509.load_der_x509_certificate(der))
    except ValueError as exc:
        raise CertificateError(f"not a DER X.509 certificate: {exc}") from None


def load_pem_certificates(pem: bytes) -> list[x509.Certificate]:
    """Parse every certificate of a PEM text; :class:`CertificateError` if there is none."""
    try:
        return [_fully_parsed(c) for c in x509.load_pem_x509_certificates(pem)]
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate list: {exc}") from None


def spki_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: how roots are pinned."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def _load_pinned(path: Path, spki: str) -> x509.Certificate:
    (cert,) = load_pem_certificates(path.read_bytes())
    if spki_sha256(cert) != spki:  # the shipped file must be the one we pinned
        raise CertificateError(f"{path.name} does not have the pinned SPKI {spki}")
    return cert


@lru_cache(maxsize=1)
def device_root() -> x509.Certificate:
    """The pinned NVIDIA Device Identity CA (shipped as package data, SPKI-checked)."""
    return _load_pinned(DEVICE_ROOT_PEM, DEVICE_ROOT_SPKI_SHA256)


@lru_cache(maxsize=1)
def rim_root() -> x509.Certificate:
    """The pinned NVIDIA CoRIM signing Root CA, which signs reference-value (RIM) chains."""
    return _load_pinned(RIM_ROOT_PEM, RIM_ROOT_SPKI_SHA256)


def describe(cert: x509.Certificate) -> str:
    """A short name for messages: the subject CN, else the whole subject."""
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


@lru_cache(maxsize=4096)
def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER (memoised: certificates repeat in every bundle)."""
    return cert.fingerprint(hashes.SHA256())


def _link_key(child: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, bytes]:
    return fingerprint(child), fingerprint(issuer)


def _check_link(child: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """Why ``issuer`` did not issue ``child`` (None when it did): name, CA rights, signature."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{describe(issuer)} has no basicConstraints: not a CA"
    except ValueError as exc:
        return f"{describe(issuer)} has malformed extensions: {exc}"
    if not constraints.ca:
        return f"{describe(issuer)} is not a CA (basicConstraints cA false)"
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            return f"{describe(issuer)} may not sign certificates (keyUsage)"
    except x509.ExtensionNotFound:
        pass
    key = _link_key(child, issuer)
    if key in _link_cache:
        return None
    try:
        child.verify_directly_issued_by(issuer)
    except ValueError:
        named = child.issuer.rfc4514_string()
        return f"{describe(child)} names issuer {named}, not {describe(issuer)}"
    except InvalidSignature:
        return f"signature on {describe(child)} does not verify under {describe(issuer)}"
    except (TypeError, UnsupportedAlgorithm) as exc:
        return f"{describe(issuer)} key cannot verify {describe(child)}: {exc}"
    with _link_lock:
        if len(_link_cache) >= _LINK_CACHE_SIZE:
            _link_cache.clear()
        _link_cache[key] = None
    return None


def _validity_problem(cert: x509.Certificate, at: datetime) -> str | None:
    if at < cert.not_valid_before_utc:
        return (
            f"{describe(cert)} is not valid before {rfc3339(cert.not_valid_before_utc)}"
        )
    if at > cert.not_valid_after_utc:
        return f"{describe(cert)} expired {rfc3339(cert.not_valid_after_utc)}"
    return None


@dataclass(frozen=True)
class ChainResult:
    """Outcome of a chain check: ``ok``, a one-line ``detail``, and the path (leaf .. root)."""

    ok: bool
    detail: str
    path: tuple[x509.Certificate, ...]


def verify_chain(
    chain: Sequence[x509.Certificate], root: x509.Certificate, at: datetime
) -> ChainResult:
    """Verify ``chain`` (leaf first) up to the pinned ``root`` as of ``at`` (aware datetime).

    A copy of the root at the end of ``chain`` is dropped (providers append it); a different
    self-signed certificate there is not trusted, so such a chain fails at its last link.
    """
    if not chain:
        return ChainResult(False, "empty certificate chain", ())
    if len(chain) > _MAX_CHAIN:
        return ChainResult(False, f"{len(chain)} certificates, more than {_MAX_CHAIN}", ())
    certs = list(chain)
    # Providers append the root; drop any copy of it (same subject and key), trust only ours.
    while (
        len(certs) > 1
        and certs[-1].subject == root.subject
        and (certs[-1] == root or certs[-1].public_key() == root.public_key())
    ):
        certs.pop()
    path = (*certs, root)
    for child, issuer in itertools.pairwise(path):
        problem = _check_link(child, issuer)
        if problem is not None:
            return ChainResult(False, problem, path)
    for cert in path:
        problem = _validity_problem(cert, at)
        if problem is not None:
            return ChainResult(False, f"{problem} (checked as of {rfc3339(at)})", path)
    return ChainResult(
        True, f"{len(path)} certificates, {describe(path[0])} -> {describe(root)} (pinned)", path
    )


def verify_device_chain(ders: Sequence[bytes], at: datetime) -> ChainResult:
    """Verify a GPU's DER chain to the pinned NVIDIA Device Identity CA as of ``at``.

    Also requires a P-384 leaf allowed to sign (keyUsage digitalSignature), since it signs
    the SPDM transcript. Raises :class:`CertificateError` only for unparsable certificates.
    """
    certs = [load_certificate(der) for der in ders]
    result = verify_chain(certs, device_root(), at)
    if not result.ok:
        return result
    leaf = certs[0]
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        return ChainResult(False, f"leaf {describe(leaf)} key is not ECDSA P-384", result.path)
    try:
        if not leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return ChainResult(False, f"leaf {describe(leaf)} may not sign (keyUsage)", result.path)
    except x509.ExtensionNotFound:
        pass
    return result


# --- FWID ---------------------------------------------------------------------------------


def _der_read(data: bytes, off: int, end: int) -> tuple[int, int, int]:
    """Read one DER TLV at ``off``: return ``(tag, value_start, value_end)``."""
    if off + 2 > end:
        raise CertificateError("truncated DER in FWID extension")
    tag, first = data[off], data[off + 1]
    off += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 3 or off + n > end:
            raise CertificateError("bad DER length in FWID extension")
        length = int.from_bytes(data[off : off + n], "big")
        off += n
    if off + length > end:
        raise CertificateError("DER value overruns the FWID extension")
    return tag, off, off + length


def _der_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    items = []
    off = start
    while off < end:
        item = _der_read(data, off, end)
        items.append(item)
        off = item[2]
    return items


def _fwid_from_digest_list(data: bytes, start: int, end: int) -> bytes | None:
    """First digest in a list of ``FWID ::= SEQUENCE {hashAlg OID, digest OCTET STRING}``."""
    for tag, s, e in _der_children(data, start, end):
        if tag != 0x30:
            raise CertificateError("FWID list entry is not a SEQUENCE")
        parts = _der_children(data, s, e)
        if len(parts) != 2 or parts[0][0] != 0x06 or parts[1][0] != 0x04:
            raise CertificateError("FWID entry is not {OID, OCTET STRING}")
        return data[parts[1][1] : parts[1][2]]
    return None


def tcb_info_fwid(value: bytes) -> bytes | None:
    """The FWID inside a DER TcbInfo extension value (either layout, see :func:`leaf_fwid`)."""
    tag, s, e = _der_read(value, 0, len(value))
    if tag != 0x30 or e != len(value):
        raise CertificateError("TcbInfo extension is not one SEQUENCE")
    fields = _der_children(value, s, e)
    for field_tag, fs, fe in fields:
        if field_tag == 0xA6:  # [6] IMPLICIT FWIDLIST (Blackwell, TCG DICE TcbInfo)
            return _fwid_from_digest_list(value, fs, fe)
    if fields and fields[-1][0] == 0x30:  # Hopper: {INTEGER, SPKI, {hash OID, digest}}
        _, ls, le = fields[-1]
        parts = _der_children(value, ls, le)
        if len(parts) == 2 and parts[0][0] == 0x06 and parts[1][0] == 0x04:
            return value[parts[1][1] : parts[1][2]]
    raise CertificateError("TcbInfo extension holds no FWID")


def leaf_fwid(cert: x509.Certificate) -> bytes | None:
    """The firmware ID the device certified in its leaf (TCG DICE TcbInfo), or ``None``.

    Hopper (``2.23.133.5.4.1``): ``SEQUENCE {INTEGER, SubjectPublicKeyInfo, SEQUENCE {hash OID,
    OCTET STRING}}`` - the digest of the last element. Blackwell (``2.23.133.5.4.1.1``):
    TcbInfo with context-tagged fields; ``[6] fwids`` holds the FWID list, the first digest
    is the FWID. Raises :class:`CertificateError` when the extension is malformed.
    """
    try:
        extensions = list(cert.extensions)
    except ValueError as exc:
        raise CertificateError(f"malformed certificate extensions: {exc}") from None
    for ext in extensions:
        if ext.oid in (OID_TCB_INFO, OID_TCB_INFO_BLACKWELL):
            value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
            return tcb_info_fwid(value)
    return None
