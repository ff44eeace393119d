"""The ``none`` GPU evidence provider: a node without confidential-computing GPUs."""

from __future__ import annotations

from .base import GpuEvidence


class NoGpuEvidenceProvider:
    """No GPU evidence; the report's ``nvidia_payload`` is null."""

    name = "none"

    async def evidence(self, nonce: bytes) -> list[GpuEvidence]:
        return []

    async def aclose(self) -> None:
        return None
