"""report_data binding: which key and which nonce the TDX quote vouches for.

``report_data`` (64 bytes of the verified quote, never a JSON field) is laid out by the node:

- vllm-proxy / NEAR AI (Python and Rust proxies since 2025-10): ``address ‖ nonce`` — the
  signing address (ECDSA: 20-byte Ethereum address; Ed25519: 32-byte public key) right-padded
  with zeros to 32 bytes, then the 32-byte request nonce;
- TLS variant (``include_tls_fingerprint``, NEAR gateway): ``SHA-256(address ‖ fingerprint) ‖
  nonce``, the fingerprint being SHA-256 of the TLS certificate's SubjectPublicKeyInfo;
- Redpill "chutes": ``report_data[0:32] = SHA-256(nonce_hex ‖ e2e_pubkey_base64)`` (ASCII);
- legacy (before 2025-10): the address padded to 64 bytes without a nonce, or tappd's hashed
  layouts — reported as ``skip`` (unverifiable), never as ``pass``.

See docs/attestation.md "report_data binding"; the producer side is ``_build_report_data``
in https://github.com/nearai/vllm-proxy (``src/app/quote/quote.py``), and ``teelog node``
builds its report_data with :func:`report_data_for` below.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .verdict import Check

NO_NONCE = "no nonce to compare; replay not excluded"
_HEX = re.compile(r"\A[0-9a-fA-F]*\Z")


@dataclass(frozen=True, slots=True)
class BindingClaims:
    """What the report says it bound (all untrusted until checked against report_data)."""

    signing_address: str | None = None
    signing_algo: str | None = None
    request_nonce: str | None = None  # hex
    tls_cert_fingerprint: str | None = None  # hex
    e2e_pubkey: str | None = None  # base64 text (chutes)
    chutes: bool = False


@dataclass(frozen=True, slots=True)
class BindingResult:
    report_data: Check
    nonce: Check
    bound_nonce: bytes | None  # the nonce the quote commits to, if any
    gpu_nonce: bytes | None  # the nonce the GPU evidence must carry (from the quote)


def verify_binding(
    report_data: bytes, claims: BindingClaims, expected_nonce: bytes | None
) -> BindingResult:
    """Checks ``binding.report_data`` and ``binding.nonce`` for one attestation."""
    if claims.chutes:
        rd_check, bound, gpu = _chutes(report_data, claims)
    else:
        rd_check, bound, gpu = _address_nonce(report_data, claims)
    return BindingResult(rd_check, _nonce_check(bound, claims, expected_nonce), bound, gpu)


NONCE_SIZE = 32


def address_field(key: bytes) -> bytes:
    """``report_data[0:32]`` of the vllm-proxy layout: the signing key's bytes (20 or 32)
    right-padded with zeros to 32 bytes."""
    if len(key) > 32:
        raise ValueError("a signing address is at most 32 bytes")
    return key.ljust(32, b"\0")


def report_data_for(key: bytes, nonce: bytes) -> bytes:
    """The 64 bytes of report_data binding ``key`` to ``nonce`` (``address ‖ nonce``, module
    docstring): what a node puts in its quote and exactly what :func:`verify_binding` passes."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    return address_field(key) + nonce


def signing_key_bytes(address: str, algo: str | None) -> bytes | None:
    """The bytes a signing address stands for: 20 (ECDSA address) or 32 (Ed25519 key)."""
    text = address.strip().removeprefix("0x").removeprefix("0X")
    if not _HEX.match(text):
        return None
    if len(text) == 40 and algo in (None, "ecdsa"):
        return bytes.fromhex(text)
    if len(text) == 64 and algo in (None, "ed25519"):
        return bytes.fromhex(text)
    return None


def _address_nonce(rd: bytes, claims: BindingClaims) -> tuple[Check, bytes | None, bytes | None]:
    if not claims.signing_address:
        return (
            Check("binding.report_data", "skip", "report names no signing address to bind"),
            None,
            None,
        )
    key = signing_key_bytes(claims.signing_address, claims.signing_algo)
    if key is None:
        return (
            Check(
                "binding.report_data",
                "fail",
                f"signing_address {claims.signing_address!r} is not a "
                f"{claims.signing_algo or 'ecdsa/ed25519'} address",
            ),
            None,
            None,
        )
    head, tail = rd[:32], rd[32:64]
    nonce = _hex_bytes(claims.request_nonce)
    fingerprint = _hex_bytes(claims.tls_cert_fingerprint)
    plain = address_field(key)
    tls = hashlib.sha256(key + fingerprint).digest() if fingerprint else None
    if claims.request_nonce is None:
        if rd == key.ljust(64, b"\0"):
            return (
                Check(
                    "binding.report_data",
                    "skip",
                    "legacy layout: signing address padded to 64 bytes, no nonce; freshness "
                    "unverifiable",
                ),
                None,
                None,
            )
        return (
            Check(
                "binding.report_data",
                "skip",
                f"legacy report without request_nonce; report_data layout unverifiable "
                f"({rd.hex()[:32]}…)",
            ),
            None,
            None,
        )
    if head == plain:
        layout = "signing address zero-padded ‖ nonce"
    elif tls is not None and head == tls:
        layout = "sha256(signing address ‖ TLS fingerprint) ‖ nonce"
    else:
        expected = "zero-padded address" + (" or sha256(address ‖ TLS fingerprint)" if tls else "")
        return (
            Check(
                "binding.report_data",
                "fail",
                f"report_data[0:32] {head.hex()} is not the {expected} for "
                f"{claims.signing_address}",
            ),
            tail,
            tail,
        )
    if nonce is None or tail != nonce:
        return (
            Check(
                "binding.report_data",
                "fail",
                f"report_data[32:64] {tail.hex()} is not the report's request_nonce "
                f"{claims.request_nonce}",
            ),
            tail,
            tail,
        )
    return (
        Check("binding.report_data", "pass", f"{layout} ({claims.signing_address})"),
        tail,
        tail,
    )


def _chutes(rd: bytes, claims: BindingClaims) -> tuple[Check, bytes | None, bytes | None]:
    if not claims.request_nonce or not claims.e2e_pubkey:
        return (
            Check("binding.report_data", "skip", "chutes attestation without nonce or e2e_pubkey"),
            None,
            rd[:32],
        )
    digest = hashlib.sha256((claims.request_nonce + claims.e2e_pubkey).encode()).digest()
    if rd[:32] != digest:
        return (
            Check(
                "binding.report_data",
                "fail",
                f"report_data[0:32] {rd[:32].hex()} is not sha256(nonce ‖ e2e_pubkey) "
                f"{digest.hex()}",
            ),
            None,
            rd[:32],
        )
    bound = _hex_bytes(claims.request_nonce)
    return (
        Check(
            "binding.report_data",
            "pass",
            "sha256(nonce_hex ‖ e2e_pubkey_b64) (Redpill chutes): binds the E2E key and nonce",
        ),
        bound,
        rd[:32],
    )


def _nonce_check(bound: bytes | None, claims: BindingClaims, expected: bytes | None) -> Check:
    if expected is None:
        return Check("binding.nonce", "skip", NO_NONCE, required=False)
    claimed = _hex_bytes(claims.request_nonce)
    if claimed is not None and claimed != expected:
        return Check(
            "binding.nonce",
            "fail",
            f"report answers nonce {claimed.hex()}, expected {expected.hex()}",
        )
    if bound is None:
        return Check(
            "binding.nonce", "fail", f"the quote does not verifiably bind nonce {expected.hex()}"
        )
    if bound != expected:
        return Check(
            "binding.nonce",
            "fail",
            f"the quote binds nonce {bound.hex()}, expected {expected.hex()}",
        )
    return Check("binding.nonce", "pass", f"the quote binds the expected nonce {expected.hex()}")


def _hex_bytes(text: str | None) -> bytes | None:
    if not text or not isinstance(text, str):
        return None
    cleaned = text.strip().removeprefix("0x")
    if not _HEX.match(cleaned) or len(cleaned) % 2:
        return None
    return bytes.fromhex(cleaned)
