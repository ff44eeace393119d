"""Trustee KBS runtime-data binding: how the evidence commits to the challenge nonce and the
tee-pubkey. One home for both sides: the broker checks it (``teelog.broker.evidence``), the
node produces it (``teelog.node.model_fetch``).

Trustee's rule (guest-components ``kbs_protocol`` rcar_client.rs, attester ``tdx/mod.rs``; kbs
``attestation/backend.rs``; research/key-release.md §1.2), with SHA-384, the default hash:

- ``report_data = SHA-384(JCS({"additional-evidence": <string>, "nonce": <challenge>,
  "tee-pubkey": <JWK>})) ‖ 16 zero bytes``, compared over all 64 bytes (JCS = RFC 8785);
- the GPU (SPDM) nonce is the first 32 bytes of ``SHA-384(JCS({"nonce", "tee-pubkey"}))``.

The broker rebuilds the JSON from the fields received and its own session nonce, so a swapped
key, a changed ``additional-evidence`` string, another nonce or non-zero padding all fail.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from .verdict import Check

REPORT_DATA_BYTES = 64
GPU_NONCE_BYTES = 32


def expected_report_data(nonce: str, tee_pubkey: dict[str, Any], additional_evidence: str) -> bytes:
    """The 64 bytes the evidence's report_data must equal."""
    runtime = {"additional-evidence": additional_evidence, "nonce": nonce, "tee-pubkey": tee_pubkey}
    return hashlib.sha384(rfc8785.dumps(runtime)).digest().ljust(REPORT_DATA_BYTES, b"\0")


def expected_gpu_nonce(nonce: str, tee_pubkey: dict[str, Any]) -> bytes:
    """The 32-byte SPDM nonce device evidence must carry (Trustee's ``regularize_data``)."""
    device = {"nonce": nonce, "tee-pubkey": tee_pubkey}
    return hashlib.sha384(rfc8785.dumps(device)).digest()[:GPU_NONCE_BYTES]


def binding_check(
    report_data: bytes, nonce: str, tee_pubkey: dict[str, Any], additional_evidence: str
) -> Check:
    """``binding.report_data``: the evidence's report_data against the rule above."""
    expected = expected_report_data(nonce, tee_pubkey, additional_evidence)
    if report_data == expected:
        return Check(
            "binding.report_data",
            "pass",
            "report_data = SHA-384(JCS(additional-evidence, nonce, tee-pubkey)) ‖ 0^16",
        )
    if report_data[:48] == expected[:48]:
        why = f"padding bytes 48-63 are {report_data[48:].hex()}, not zero"
    else:
        why = (f"report_data {report_data.hex()} is not SHA-384(JCS(runtime-data)) ‖ 0^16 "
               f"{expected.hex()} for this nonce and tee-pubkey")
    return Check("binding.report_data", "fail", why)
