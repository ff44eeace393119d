"""GPU evidence providers (one module per source): NVML, or none.

:func:`choose_gpu_evidence` turns ``--gpu-evidence auto|nvml|none`` into one.
"""

from __future__ import annotations

import logging

from .base import GpuEvidence, GpuEvidenceError, GpuEvidenceProvider, nvidia_payload
from .none import NoGpuEvidenceProvider
from .nvml import NvmlGpuEvidenceProvider, load_pynvml

__all__ = [
    "GpuEvidence",
    "GpuEvidenceError",
    "GpuEvidenceProvider",
    "NoGpuEvidenceProvider",
    "NvmlGpuEvidenceProvider",
    "choose_gpu_evidence",
    "nvidia_payload",
]

log = logging.getLogger("teelog.node.gpu")

GPU_EVIDENCE_CHOICES = ("auto", "nvml", "none")


def choose_gpu_evidence(kind: str) -> GpuEvidenceProvider:
    """The provider for ``kind``. ``auto`` uses NVML when it loads, sees GPUs and CC mode is
    on, else none, and logs what it picked and why; ``nvml`` fails loudly instead."""
    if kind == "none":
        return NoGpuEvidenceProvider()
    if kind == "nvml":
        return NvmlGpuEvidenceProvider(load_pynvml())
    if kind == "auto":
        try:
            provider = NvmlGpuEvidenceProvider(load_pynvml())
        except GpuEvidenceError as exc:
            log.info("GPU evidence auto-selected: none (%s)", exc)
            return NoGpuEvidenceProvider()
        log.info("GPU evidence auto-selected: nvml (%d GPUs)", provider.count)
        return provider
    raise ValueError(f"unknown GPU evidence source {kind!r}; choose one of {GPU_EVIDENCE_CHOICES}")
