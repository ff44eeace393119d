"""Response signing keys of a node, and the matching verification: one place for both.

Two schemes, both as the vllm-proxy API defines them (docs/node.md "What is signed"):

``ecdsa``    secp256k1, Ethereum EIP-191 ``personal_sign`` (version 0x45): the digest is
             ``keccak256(b"\\x19Ethereum Signed Message:\\n" + str(len(msg)) + msg)`` over the
             UTF-8 text; the signature is ``0x`` + hex(r ‖ s ‖ v), 65 bytes, v in {27, 28};
             the signer is named by its Ethereum address (``0x`` + last 20 bytes of
             keccak256 of the uncompressed public key), EIP-55 checksummed here.
``ed25519``  raw Ed25519 (RFC 8032 §5.1) over the UTF-8 text; signature 128 hex chars without
             ``0x``; the signer is named by its 32-byte public key in hex.

The node signs with :class:`EcdsaSigner` / :class:`Ed25519Signer`; verifiers use
:func:`recover_ecdsa_address` and :func:`verify_ed25519`.
"""

from __future__ import annotations

import secrets

import coincurve
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eth_hash.auto import keccak
from eth_keys import KeyAPI
from eth_keys.backends import CoinCurveECCBackend
from eth_keys.exceptions import BadSignature, ValidationError

_keys = KeyAPI(CoinCurveECCBackend)
_EIP191_PREFIX = b"\x19Ethereum Signed Message:\n"


def eip191_digest(text: str) -> bytes:
    """The EIP-191 ``personal_sign`` digest of a text message (its UTF-8 bytes)."""
    message = text.encode("utf-8")
    return keccak(_EIP191_PREFIX + str(len(message)).encode("ascii") + message)


class EcdsaSigner:
    """A secp256k1 signing key that signs texts the EIP-191 way (``signing_algo`` ``ecdsa``)."""

    algo = "ecdsa"

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValueError("secp256k1 private key must be 32 bytes")
        self._key = _keys.PrivateKey(private_key)
        # Signing goes to libsecp256k1 (coincurve) directly: eth-keys' wrapper (validation,
        # Signature objects) cost ~55 µs per signature against ~22 µs here, and the node signs
        # every response. Both use RFC 6979 nonces, so the signatures are identical.
        self._secp = coincurve.PrivateKey(private_key)
        self.address: str = self._key.public_key.to_checksum_address()
        # The public key as the API publishes it (``signing_public_key``): 64 bytes x ‖ y, hex.
        self.public_key: str = self._key.public_key.to_bytes().hex()

    @classmethod
    def generate(cls) -> EcdsaSigner:
        return cls(secrets.token_bytes(32))

    @property
    def private_bytes(self) -> bytes:
        return self._key.to_bytes()

    def sign(self, text: str) -> str:
        """``0x`` + hex(r ‖ s ‖ v), v in {27, 28}."""
        rs_v = self._secp.sign_recoverable(eip191_digest(text), hasher=None)
        return "0x" + (rs_v[:64] + bytes((rs_v[64] + 27,))).hex()


class Ed25519Signer:
    """An Ed25519 signing key (``signing_algo`` ``ed25519``); ``address`` is the public key hex."""

    algo = "ed25519"

    def __init__(self, private_key: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)
        self.address: str = (
            self._key.public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            .hex()
        )
        self.public_key: str = self.address

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(secrets.token_bytes(32))

    @property
    def private_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, text: str) -> str:
        """128 hex chars, no ``0x``."""
        return self._key.sign(text.encode("utf-8")).hex()


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x").removeprefix("0X"))


def recover_ecdsa_address(text: str, signature: str) -> str:
    """The EIP-55 address that made this EIP-191 signature over ``text``.

    Raises ``ValueError`` when the signature is not 65 bytes of hex with v in {0, 1, 27, 28}
    or does not recover to any key.
    """
    try:
        raw = _hex(signature)
    except ValueError:
        raise ValueError("signature is not hex") from None
    if len(raw) != 65:
        raise ValueError(f"secp256k1 signature must be 65 bytes, got {len(raw)}")
    v = raw[64] - 27 if raw[64] >= 27 else raw[64]
    if v not in (0, 1):
        raise ValueError(f"recovery id v={raw[64]} is not 27/28")
    try:
        sig = _keys.Signature(raw[:64] + bytes([v]))
        public_key = sig.recover_public_key_from_msg_hash(eip191_digest(text))
    except (BadSignature, ValidationError, ValueError) as exc:
        raise ValueError(f"signature does not recover: {exc}") from None
    return public_key.to_checksum_address()


def verify_ed25519(text: str, signature: str, public_key: str) -> bool:
    """Whether ``signature`` (hex) is a valid Ed25519 signature of ``text`` by ``public_key`` (hex).

    Raises ``ValueError`` for a signature or key that is not the right length of hex.
    """
    try:
        sig, key = _hex(signature), _hex(public_key)
    except ValueError:
        raise ValueError("Ed25519 signature or public key is not hex") from None
    if len(sig) != 64 or len(key) != 32:
        raise ValueError(
            f"Ed25519 needs a 64-byte signature and 32-byte key ({len(sig)}, {len(key)})"
        )
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, text.encode("utf-8"))
    except InvalidSignature:
        return False
    return True
