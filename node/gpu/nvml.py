"""GPU evidence from NVML (``nvidia-ml-py``, module ``pynvml``), per GPU, with the nonce.

Calls (NVML API reference, "Confidential Computing" queries; the same calls
nv-local-gpu-verifier's ``NvmlHandler`` makes):
``nvmlSystemGetConfComputeState().ccFeature`` must be ``NVML_CC_SYSTEM_FEATURE_ENABLED``;
per device ``nvmlDeviceGetConfComputeGpuAttestationReport(handle, nonce)`` →
``attestationReport[:attestationReportSize]`` (SPDM transcript over the 32-byte nonce) and
``nvmlDeviceGetConfComputeGpuCertificate(handle)`` →
``attestationCertChain[:attestationCertChainSize]`` (PEM chain of the attestation key).

The ``nvml`` argument is the ``pynvml`` module or an object with the same functions, so the
provider runs unchanged against a recorded stand-in in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import ModuleType
from typing import Any

from .base import GpuEvidence, GpuEvidenceError

_NONCE_SIZE = 32


def load_pynvml() -> ModuleType:
    """Import ``pynvml`` (extra ``teelog[gpu]``) or explain how to get it."""
    try:
        import pynvml
    except ImportError as exc:
        raise GpuEvidenceError(
            "NVML GPU evidence needs nvidia-ml-py (pip install 'teelog[gpu]')"
        ) from exc
    return pynvml


class NvmlGpuEvidenceProvider:
    """Evidence for every GPU NVML sees; initialises NVML once and checks CC mode is on."""

    name = "nvml"

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self._lock = threading.Lock()
        try:
            nvml.nvmlInit()
            state = nvml.nvmlSystemGetConfComputeState()
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:  # NVMLError and friends: no driver, no device
            raise GpuEvidenceError(f"NVML unavailable: {exc}") from exc
        if state.ccFeature != nvml.NVML_CC_SYSTEM_FEATURE_ENABLED:
            raise GpuEvidenceError("GPU confidential-computing mode is off (NVML ccFeature)")
        if count < 1:
            raise GpuEvidenceError("NVML reports no GPU")
        self.count = count

    async def evidence(self, nonce: bytes) -> list[GpuEvidence]:
        return await asyncio.to_thread(self.evidence_blocking, nonce)

    def evidence_blocking(self, nonce: bytes) -> list[GpuEvidence]:
        """Evidence of each GPU over ``nonce`` (32 bytes), in NVML index order."""
        if len(nonce) != _NONCE_SIZE:
            raise ValueError(f"GPU nonce must be {_NONCE_SIZE} bytes, got {len(nonce)}")
        nvml = self.nvml
        out: list[GpuEvidence] = []
        with self._lock:
            for index in range(self.count):
                try:
                    handle = nvml.nvmlDeviceGetHandleByIndex(index)
                    arch = _arch_name(nvml, nvml.nvmlDeviceGetArchitecture(handle))
                    report = nvml.nvmlDeviceGetConfComputeGpuAttestationReport(handle, nonce)
                    cert = nvml.nvmlDeviceGetConfComputeGpuCertificate(handle)
                except GpuEvidenceError:
                    raise
                except Exception as exc:
                    raise GpuEvidenceError(f"NVML evidence of GPU {index} failed: {exc}") from exc
                out.append(
                    GpuEvidence(
                        arch=arch,
                        report=bytes(report.attestationReport[: report.attestationReportSize]),
                        certificate_chain=bytes(
                            cert.attestationCertChain[: cert.attestationCertChainSize]
                        ),
                    )
                )
        return out

    async def aclose(self) -> None:
        # Shutting down: an NVML error here has no one left to report to.
        with contextlib.suppress(Exception):
            self.nvml.nvmlShutdown()


def _arch_name(nvml: Any, arch: int) -> str:
    if arch == nvml.NVML_DEVICE_ARCH_HOPPER:
        return "HOPPER"
    if arch == nvml.NVML_DEVICE_ARCH_BLACKWELL:
        return "BLACKWELL"
    raise GpuEvidenceError(f"GPU architecture {arch} has no confidential-computing attestation")
