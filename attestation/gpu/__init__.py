"""NVIDIA GPU evidence: decode ``nvidia_payload``, parse SPDM reports, verify offline.

Public API (see docs/attestation.md, "GPU evidence and receipts")::

    verify_gpu_evidence(payload, *, expected_nonce, at, rim_dir=None, jwks=None, nras=None)
        -> GpuResult(.checks, .gpus, .devices, .payload, .status)
    decode_nvidia_payload(payload) -> NvidiaPayload
    parse_attestation_report(bytes) -> AttestationReport
    verify_nras_response(response, jwks, *, at, expected_nonce=None, gpu_count=None) -> NrasOutcome
"""

from .errors import (
    CertificateError,
    GpuEvidenceError,
    NrasError,
    PayloadError,
    RimError,
    SpdmError,
)
from .nras import NrasOutcome, verify_nras_response
from .payload import GpuEvidence, NvidiaPayload, decode_nvidia_payload
from .spdm import AttestationReport, parse_attestation_report
from .verify import GpuDevice, GpuResult, verify_gpu_evidence

__all__ = [
    "AttestationReport",
    "CertificateError",
    "GpuDevice",
    "GpuEvidence",
    "GpuEvidenceError",
    "GpuResult",
    "NrasError",
    "NrasOutcome",
    "NvidiaPayload",
    "PayloadError",
    "RimError",
    "SpdmError",
    "decode_nvidia_payload",
    "parse_attestation_report",
    "verify_gpu_evidence",
    "verify_nras_response",
]
