"""The node's signing keys: one ECDSA and one Ed25519 key, random or derived in the TEE.

- ``random``: fresh keys at every start (what the Python vllm-proxy does); the address changes
  on restart, and each report binds the current one.
- ``dstack``: ``GetKey(path="<prefix>/ecdsa-signing-key" | "<prefix>/ed25519-signing-key",
  purpose="signing")`` from the guest agent, as nearai/inference-proxy does
  (``src/signing.rs``): keys derived from the app's identity inside the TEE, stable across
  restarts and instances of the same app. The 32 returned bytes are the secp256k1 secret and
  the Ed25519 seed respectively.

The signers are ``teelog.attestation.signing``'s, the same module verifiers use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..attestation.signing import EcdsaSigner, Ed25519Signer
from .dstack_agent import DstackAgent
from .receipt import SigningAlgo

KEY_SOURCES = ("random", "dstack")


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The pair of signers a node uses for every response."""

    ecdsa: EcdsaSigner
    ed25519: Ed25519Signer

    @classmethod
    def from_secrets(cls, ecdsa_secret: bytes, ed25519_seed: bytes) -> SigningKeys:
        return cls(EcdsaSigner(ecdsa_secret), Ed25519Signer(ed25519_seed))

    @classmethod
    def random(cls) -> SigningKeys:
        while True:
            try:
                return cls.from_secrets(os.urandom(32), os.urandom(32))
            except ValueError:  # a secret ≥ the curve order: astronomically rare, draw again
                continue

    @classmethod
    async def from_dstack(cls, agent: DstackAgent, prefix: str = "teelog") -> SigningKeys:
        ecdsa = await agent.get_key(f"{prefix}/ecdsa-signing-key", "signing")
        ed25519 = await agent.get_key(f"{prefix}/ed25519-signing-key", "signing")
        return cls.from_secrets(ecdsa, ed25519)

    def signer(self, algo: SigningAlgo) -> EcdsaSigner | Ed25519Signer:
        return self.ecdsa if algo == "ecdsa" else self.ed25519

    def address_bytes(self, algo: SigningAlgo) -> bytes:
        """The bytes bound into report_data: 20-byte address (ecdsa) or 32-byte key (ed25519)."""
        return bytes.fromhex(self.signer(algo).address.removeprefix("0x"))

    def public_key_hex(self, algo: SigningAlgo) -> str:
        """``signing_public_key`` as the Phala and Rust proxies publish it: 64-byte x ‖ y
        (ecdsa, no 0x04) or the 32-byte key (ed25519), hex."""
        return self.signer(algo).public_key
