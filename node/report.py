"""The attestation report (``GET /v1/attestation/report``), vllm-proxy shape.

Binding (docs/attestation.md "report_data binding"; made by
``teelog.attestation.binding.report_data_for``, the layout the verifier checks):
``report_data = signing_address_bytes.ljust(32, b"\\0") ‖ nonce`` where the address bytes are
the 20-byte Ethereum address for ``ecdsa`` and the 32-byte public key for ``ed25519``; the same
nonce is the requester nonce of every GPU's evidence.

Body: ``signing_address, signing_algo, signing_public_key, request_nonce, intel_quote (hex),
nvidia_payload (JSON string), event_log (list), info (object), all_attestations [the same object
without all_attestations]``, plus our ``tee`` (``"tdx"`` or ``"none"``), ``quote_provider`` and
``gpu_evidence`` markers. A node without a TEE returns ``intel_quote: null`` and ``tee: "none"``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from teelog.attestation.binding import NONCE_SIZE, report_data_for

from .errors import NodeError
from .gpu import GpuEvidenceError, GpuEvidenceProvider, nvidia_payload
from .keys import SigningKeys
from .quote import QuoteError, QuoteProvider
from .receipt import SigningAlgo

log = logging.getLogger("teelog.node.report")

def parse_nonce(value: str) -> bytes:
    """A client's ``nonce`` query value (64 hex characters) as bytes, or a 400 NodeError."""
    try:
        nonce = bytes.fromhex(value)
    except ValueError:
        raise NodeError(
            400, "Nonce must be hex-encoded", param="nonce", code="invalid_nonce"
        ) from None
    if len(nonce) != NONCE_SIZE:
        raise NodeError(
            400, f"Nonce must be {NONCE_SIZE} bytes (64 hex characters), got {len(nonce)}",
            param="nonce", code="invalid_nonce",
        )
    return nonce


class Attestor:
    """Builds reports from the node's keys and its quote and GPU evidence providers.

    The report is public and each one costs a TDX quote and a GPU measurement, so at most
    ``concurrency`` are produced at a time and at most ``backlog`` requests wait (429 beyond).
    """

    def __init__(
        self,
        keys: SigningKeys,
        quotes: QuoteProvider,
        gpus: GpuEvidenceProvider,
        *,
        concurrency: int = 4,
        backlog: int = 64,
    ) -> None:
        self.keys = keys
        self.quotes = quotes
        self.gpus = gpus
        self._slots = asyncio.Semaphore(concurrency)
        self._backlog = backlog
        self._pending = 0

    async def report(
        self, nonce: bytes, algo: SigningAlgo, signing_address: str | None = None
    ) -> dict[str, Any]:
        """The report for ``algo`` over ``nonce``; 404 if ``signing_address`` is not ours,
        503 if a provider fails."""
        signer = self.keys.signer(algo)
        if signing_address is not None and signing_address.lower() != signer.address.lower():
            raise NodeError(
                404, "Signing address not found on this server", "not_found",
                param="signing_address", code="unknown_signing_address",
            )
        data = report_data_for(self.keys.address_bytes(algo), nonce)
        if self._pending >= self._backlog:
            raise NodeError(
                429, "too many attestation reports in progress; retry shortly",
                "rate_limit_exceeded", code="attestation_busy",
            )
        self._pending += 1
        try:
            async with self._slots:
                tdx, gpu_evidence, info = await asyncio.gather(
                    self.quotes.quote(data), self.gpus.evidence(nonce), self.quotes.info()
                )
        except (QuoteError, GpuEvidenceError) as exc:
            log.error("attestation failed: %s", exc)
            raise NodeError(
                503, f"attestation evidence unavailable: {exc}", "attestation_unavailable",
                code="attestation_unavailable",
            ) from exc
        finally:
            self._pending -= 1
        body: dict[str, Any] = {
            "signing_address": signer.address,
            "signing_algo": algo,
            "signing_public_key": self.keys.public_key_hex(algo),
            "request_nonce": nonce.hex(),
            "intel_quote": tdx.quote.hex() if tdx is not None else None,
            "nvidia_payload": nvidia_payload(nonce, gpu_evidence) if gpu_evidence else None,
            "event_log": tdx.event_log if tdx is not None else None,
            "info": info,
            "tee": self.quotes.tee,
            "quote_provider": self.quotes.name,
            "gpu_evidence": self.gpus.name,
        }
        return {**body, "all_attestations": [dict(body)]}
