"""A receipt: one delivered response, signed by the node, as kept in the journal and published.

The signed text is the vllm-proxy rule (docs/node.md, "What is signed"):
``sha256hex(request bytes) + ":" + sha256hex(response bytes)``, lowercase hex, where the bytes
are exactly those the node received from the client and sent to it. A receipt carries hashes
only, never prompts or completions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from teelog.attestation.receipt import text_of_hashes

SigningAlgo = Literal["ecdsa", "ed25519"]
SIGNING_ALGOS: tuple[SigningAlgo, ...] = ("ecdsa", "ed25519")


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature over a receipt's text and the address (or public key) that made it."""

    signing_address: str
    signature: str

    def to_json(self) -> dict[str, str]:
        return {"signing_address": self.signing_address, "signature": self.signature}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A signed exchange. ``seq`` is the journal's sequence number (0 until journaled)."""

    seq: int
    chat_id: str
    model: str | None
    request_sha256: str
    response_sha256: str
    signed_at: str  # RFC 3339 UTC, second precision, "Z" (docs/entries.md)
    ecdsa: Signature
    ed25519: Signature

    @property
    def text(self) -> str:
        """The signed text: ``<request sha256 hex>:<response sha256 hex>``."""
        return text_of_hashes(self.request_sha256, self.response_sha256)

    def signature(self, algo: SigningAlgo) -> Signature:
        return self.ecdsa if algo == "ecdsa" else self.ed25519

    def signature_response(self, algo: SigningAlgo) -> dict[str, str]:
        """The body of ``GET /v1/signature/{chat_id}`` (vllm-proxy shape)."""
        sig = self.signature(algo)
        return {
            "text": self.text,
            "signature": sig.signature,
            "signing_address": sig.signing_address,
            "signing_algo": algo,
        }

    def to_feed_json(self) -> dict[str, Any]:
        """One item of ``GET /v1/receipts`` (docs/node.md, "Receipts feed")."""
        return {
            "seq": self.seq,
            "chat_id": self.chat_id,
            "model": self.model,
            "text": self.text,
            "request_sha256": self.request_sha256,
            "response_sha256": self.response_sha256,
            "signed_at": self.signed_at,
            "ecdsa": self.ecdsa.to_json(),
            "ed25519": self.ed25519.to_json(),
        }
