"""A stand-in for the ``pynvml`` module returning recorded GPU evidence (test-only).

It exposes the functions and constants :class:`teelog.node.gpu.NvmlGpuEvidenceProvider` calls,
with the same signatures and return types as nvidia-ml-py (the very ctypes structures of the
real module are filled in), for a machine with the GPUs of a recorded real ``nvidia_payload``:
each GPU answers with its recorded SPDM report and certificate chain, whatever nonce it is
given (the nonce is recorded in :attr:`FakeNvml.nonces`). A recorded report carries the
recorded requester nonce, so evidence from this fake never matches a fresh nonce.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pynvml

DATA = Path(__file__).resolve().parents[2] / "data" / "gpu"
NEARAI_PAYLOAD = DATA / "nearai-cloud-gpt-oss-120b-2026-04" / "model0_nvidia_payload.json"


class FakeNvmlError(pynvml.NVMLError):
    pass


class FakeNvml:
    """Module-like object: pass it where the provider expects ``pynvml``."""

    NVML_CC_SYSTEM_FEATURE_ENABLED = pynvml.NVML_CC_SYSTEM_FEATURE_ENABLED
    NVML_CC_SYSTEM_FEATURE_DISABLED = pynvml.NVML_CC_SYSTEM_FEATURE_DISABLED
    NVML_DEVICE_ARCH_HOPPER = pynvml.NVML_DEVICE_ARCH_HOPPER
    NVML_DEVICE_ARCH_BLACKWELL = pynvml.NVML_DEVICE_ARCH_BLACKWELL
    NVML_DEVICE_ARCH_AMPERE = pynvml.NVML_DEVICE_ARCH_AMPERE

    def __init__(
        self,
        payload_file: Path = NEARAI_PAYLOAD,
        *,
        cc_enabled: bool = True,
        arch: int = pynvml.NVML_DEVICE_ARCH_HOPPER,
    ) -> None:
        payload = json.loads(payload_file.read_text())
        if isinstance(payload, str):
            payload = json.loads(payload)
        self.recorded_nonce = bytes.fromhex(payload["nonce"])
        self.gpus = [
            (base64.b64decode(e["evidence"]), base64.b64decode(e["certificate"]))
            for e in payload["evidence_list"]
        ]
        self.cc_enabled = cc_enabled
        self.arch = arch
        self.initialised = False
        self.nonces: list[bytes] = []
        self.fail_report: str | None = None

    def nvmlInit(self) -> None:
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def _check(self) -> None:
        if not self.initialised:
            raise FakeNvmlError(pynvml.NVML_ERROR_UNINITIALIZED)

    def nvmlSystemGetConfComputeState(self) -> pynvml.c_nvmlConfComputeSystemState_t:
        self._check()
        state = pynvml.c_nvmlConfComputeSystemState_t()
        state.ccFeature = (
            pynvml.NVML_CC_SYSTEM_FEATURE_ENABLED if self.cc_enabled
            else pynvml.NVML_CC_SYSTEM_FEATURE_DISABLED
        )
        return state

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._check()
        if not 0 <= index < len(self.gpus):
            raise FakeNvmlError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetArchitecture(self, handle: int) -> int:
        self._check()
        return self.arch

    def nvmlDeviceGetConfComputeGpuAttestationReport(
        self, handle: int, nonce: bytes
    ) -> pynvml.c_nvmlConfComputeGpuAttestationReport_t:
        self._check()
        if self.fail_report is not None:
            raise FakeNvmlError(pynvml.NVML_ERROR_UNKNOWN)
        self.nonces.append(bytes(nonce))
        report, _ = self.gpus[handle]
        out = pynvml.c_nvmlConfComputeGpuAttestationReport_t()
        out.nonce[: len(nonce)] = list(nonce)
        out.attestationReportSize = len(report)
        out.attestationReport[: len(report)] = list(report)
        return out

    def nvmlDeviceGetConfComputeGpuCertificate(
        self, handle: int
    ) -> pynvml.c_nvmlConfComputeGpuCertificate_t:
        self._check()
        _, chain = self.gpus[handle]
        out = pynvml.c_nvmlConfComputeGpuCertificate_t()
        out.attestationCertChainSize = len(chain)
        out.attestationCertChain[: len(chain)] = list(chain)
        return out
