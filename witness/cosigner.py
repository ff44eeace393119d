"""The witness's signing key: an Ed25519 ``cosignature/v1`` cosigner (c2sp.org/tlog-cosignature).

A cosignature is the signed-note signature line ``— <name> base64(key ID || u64 time || sig)``
where ``sig`` is Ed25519 over ``cosignature/v1\\ntime <t>\\n`` ‖ checkpoint body, and the key ID
is that of the type 0x04 vkey (c2sp.org/signed-note).  The private key file holds
``PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 || seed)``, the same shape as the log's key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from teelog.log.note import (
    ALG_COSIGNATURE_V1,
    CosignatureVerifier,
    NoteError,
    Signature,
    cosignature_message,
    format_skey,
    is_valid_key_name,
    key_id,
    parse_skey,
)


@dataclass(frozen=True)
class CosignatureSigner:
    """A type 0x04 witness key; ``skey`` is its private-key text."""

    name: str
    seed: bytes = field(repr=False)  # never shown in repr()

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier(self) -> CosignatureVerifier:
        pub = self.public_key
        return CosignatureVerifier(self.name, key_id(self.name, ALG_COSIGNATURE_V1, pub), pub)

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    @property
    def skey(self) -> str:
        return format_skey(self.name, ALG_COSIGNATURE_V1, self.seed)

    def cosign(self, body: str, timestamp: int) -> Signature:
        """The ``cosignature/v1`` signature over checkpoint ``body`` (note text) at a time."""
        sig = self._private.sign(cosignature_message(body.encode(), timestamp))
        return Signature(self.name, self.verifier.key_id, struct.pack(">Q", timestamp) + sig)

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        if not is_valid_key_name(name):
            raise NoteError(f"invalid witness name {name!r}: no spaces or '+' allowed")
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_skey(cls, skey: str) -> CosignatureSigner:
        return cls(*parse_skey(skey, ALG_COSIGNATURE_V1, "witness key"))
