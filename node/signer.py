"""The node's two response signers (vllm-proxy signature schemes, research node-api.md §b).

- ``ecdsa``: secp256k1, Ethereum EIP-191 ``personal_sign``: digest =
  ``keccak256(b"\\x19Ethereum Signed Message:\\n" + str(len(text)) + text)``; signature =
  ``0x`` + hex(r ‖ s ‖ v), v ∈ {27, 28}; address = EIP-55 checksummed
  ``keccak256(uncompressed public key without 0x04)[12:]``.
- ``ed25519``: RFC 8032 Ed25519 over the UTF-8 text; signature = 128 hex characters, no ``0x``;
  address = the 32-byte public key as 64 hex characters.

Built on coincurve (libsecp256k1) and cryptography because the node signs on every response's
hot path (~20 µs each). The verification side lives in ``teelog.attestation``.
"""

from __future__ import annotations

import coincurve
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_hash.auto import keccak
from eth_utils import to_checksum_address


def eip191_digest(text: str) -> bytes:
    """keccak256 of the EIP-191 version 0x45 ("personal_sign") envelope of ``text``."""
    message = text.encode("utf-8")
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


class EcdsaSigner:
    """secp256k1 EIP-191 signer holding a 32-byte secret."""

    algo = "ecdsa"

    def __init__(self, secret: bytes) -> None:
        self._key = coincurve.PrivateKey(secret)
        point = self._key.public_key.format(compressed=False)[1:]
        self.public_key = point  # 64 bytes x ‖ y
        self.address_bytes = keccak(point)[12:]
        self.address = to_checksum_address(self.address_bytes)

    def sign(self, text: str) -> str:
        sig = self._key.sign_recoverable(eip191_digest(text), hasher=None)
        return "0x" + sig[:64].hex() + format(sig[64] + 27, "02x")


class Ed25519Signer:
    """Ed25519 signer holding a 32-byte seed."""

    algo = "ed25519"

    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.address_bytes = self.public_key
        self.address = self.public_key.hex()

    def sign(self, text: str) -> str:
        return self._key.sign(text.encode("utf-8")).hex()
