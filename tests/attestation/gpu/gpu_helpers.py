"""GPU test helpers: the real evidence in tests/data/gpu and ways to mutate it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"
GPU = DATA / "gpu"
NEAR = GPU / "nearai-cloud-gpt-oss-120b-2026-04"
LEGACY = GPU / "private-ml-sdk-e2e-readme-2025-01"
NVAT = GPU / "nvidia-attestation-sdk"
NVLOCAL = GPU / "nv-local-gpu-verifier-2.7.3"

# Device certificates run 2020-10-17 .. 9999-12-31; pin the NEAR capture month (README).
AT = datetime(2026, 4, 15, tzinfo=UTC)
NEAR_NONCE = bytes.fromhex("deadbeef" + "00" * 27 + "01")


def near_payload_text() -> str:
    return (NEAR / "model0_nvidia_payload.json").read_text()


def near_payload() -> dict:
    return json.loads(near_payload_text())


def hex_sample(report: str, chain: str, directory: Path = NVAT) -> dict:
    """A one-GPU payload object built from NVIDIA's hex report + PEM chain text files."""
    return {
        "evidence_list": [
            {
                "evidence": (directory / report).read_text().strip(),
                "certificate": (directory / chain).read_text(),
            }
        ]
    }


def report_bytes(payload: dict, i: int = 0) -> bytes:
    return base64.b64decode(payload["evidence_list"][i]["evidence"])


def with_report(payload: dict, report: bytes, i: int = 0) -> dict:
    """A copy of ``payload`` whose GPU ``i`` carries ``report`` (base64 of bytes)."""
    out = json.loads(json.dumps(payload))
    out["evidence_list"][i]["evidence"] = base64.b64encode(report).decode()
    return out


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def statuses(result) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}
