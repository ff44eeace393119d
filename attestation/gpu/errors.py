"""Typed errors for GPU evidence: every malformed input raises one of these, never anything else."""

from __future__ import annotations

from ..errors import AttestationInputError


class GpuEvidenceError(AttestationInputError):
    """Base class: the GPU evidence (or a reference file for it) is malformed or unusable."""


class PayloadError(GpuEvidenceError):
    """The ``nvidia_payload`` wrapper (JSON, base64, PEM) could not be decoded."""


class SpdmError(GpuEvidenceError):
    """The SPDM GET_MEASUREMENTS request or MEASUREMENTS response is malformed.

    ``offset`` is the byte offset in the attestation report where the problem was found.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.offset = offset


class CertificateError(GpuEvidenceError):
    """A certificate or certificate chain could not be parsed."""


class RimError(GpuEvidenceError):
    """A reference integrity manifest (RIM, SWID tag XML) could not be parsed."""


class NrasError(GpuEvidenceError):
    """A stored NRAS response (detached EAT) or its key set could not be parsed."""
