"""What every GPU evidence provider gives the node, and the ``nvidia_payload`` built from it."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class GpuEvidenceError(RuntimeError):
    """GPU evidence could not be collected (driver missing, CC mode off, device error)."""


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    """One GPU's confidential-computing evidence: the SPDM GET_MEASUREMENTS transcript signed
    by the GPU over the requester nonce (``report``) and its PEM certificate chain
    (docs/attestation.md "GPU evidence and receipts"), plus the architecture name NRAS expects."""

    arch: str
    report: bytes
    certificate_chain: bytes


class GpuEvidenceProvider(Protocol):
    """A source of GPU evidence. ``name``: ``nvml`` or ``none``; ``none`` returns []."""

    name: str

    async def evidence(self, nonce: bytes) -> list[GpuEvidence]: ...

    async def aclose(self) -> None: ...


def nvidia_payload(nonce: bytes, evidence: Sequence[GpuEvidence]) -> str:
    """The ``nvidia_payload`` string of a vllm-proxy report (docs/attestation.md "Report formats"):
    ``{"nonce", "evidence_list": [{"certificate": b64(PEM chain), "evidence": b64(report),
    "arch"}], "arch"}`` — exactly the body NVIDIA's NRAS ``/v3/attest/gpu`` accepts."""
    if not evidence:
        raise ValueError("no GPU evidence to wrap")
    archs = {e.arch for e in evidence}
    if len(archs) != 1:
        raise GpuEvidenceError(f"GPUs of mixed architectures {sorted(archs)} in one node")
    return json.dumps(
        {
            "nonce": nonce.hex(),
            "evidence_list": [
                {
                    "certificate": base64.b64encode(e.certificate_chain).decode(),
                    "evidence": base64.b64encode(e.report).decode(),
                    "arch": e.arch,
                }
                for e in evidence
            ],
            "arch": evidence[0].arch,
        }
    )
