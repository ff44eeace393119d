"""Throughput of GPU evidence and receipt verification on real data.

Measures, side by side in one run:
- verify_gpu_evidence on the real NEAR AI 8-GPU payload (decode, 8 SPDM parses, 8 ECDSA P-384
  report signatures, 8 chains to the pinned root, FWID, nonce), with the verified-link cache
  warm (the steady state of a collector polling the same nodes) and cold (cache cleared before
  every run: a node never seen before);
- the floor: 8 bare ECDSA P-384 verifications of the same reports with ``cryptography``;
- verify_receipt on a real EIP-191 receipt (secp256k1 recovery) and on an Ed25519 receipt.

Usage: .venv/bin/python bench/gpu_evidence.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from teelog.attestation.gpu import certs, decode_nvidia_payload, parse_attestation_report, payload
from teelog.attestation.gpu.verify import verify_gpu_evidence, verify_report_signature
from teelog.attestation.receipt import signed_text, verify_receipt
from teelog.attestation.signing import Ed25519Signer

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = (
    ROOT / "tests/data/gpu/nearai-cloud-gpt-oss-120b-2026-04/model0_nvidia_payload.json"
).read_text()
NONCE = bytes.fromhex(json.loads(PAYLOAD)["nonce"])
AT = datetime(2026, 4, 15, tzinfo=UTC)
SAMPLES = json.loads((ROOT / "tests/data/reports/nearai_docs_signature_samples.json").read_text())


def interleaved(
    variants: dict[str, tuple[Callable[[], object], Callable[[], None] | None]], runs: int
) -> dict[str, list[float]]:
    """Run every variant once per round, ``runs`` rounds: all rows share the same machine load."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, (fn, before) in variants.items():
            if before:
                before()
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)
    return samples


def row(name: str, samples: list[float], per: str) -> None:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"| {name} | {p50 * 1e3:.3f} ms | {p99 * 1e3:.3f} ms | {1 / p50:,.0f} {per}/s |")


def clear_caches() -> None:
    certs._link_cache.clear()
    certs.load_certificate.cache_clear()
    certs.fingerprint.cache_clear()
    payload._decode_chain.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    runs = 30 if parser.parse_args().quick else 300

    result = verify_gpu_evidence(PAYLOAD, expected_nonce=NONCE, at=AT)
    assert result.status == "verified", result.checks
    decoded = decode_nvidia_payload(PAYLOAD)
    reports = [parse_attestation_report(ev.report) for ev in decoded.evidence]
    leaves = [certs.load_certificate(ev.certificates[0]) for ev in decoded.evidence]

    def signatures_only() -> None:
        for report, leaf in zip(reports, leaves, strict=True):
            assert verify_report_signature(report, leaf)

    ecdsa = SAMPLES["samples"][2]["signature_response"]
    signer = Ed25519Signer.generate()
    text = signed_text(b"request", b"response")
    ed = {
        "text": text,
        "signature": signer.sign(text),
        "signing_address": signer.address,
        "signing_algo": "ed25519",
    }

    payload_runs = {
        "8-GPU payload, link cache warm": (
            lambda: verify_gpu_evidence(PAYLOAD, expected_nonce=NONCE, at=AT),
            None,
        ),
        "8-GPU payload, caches cleared each run": (
            lambda: verify_gpu_evidence(PAYLOAD, expected_nonce=NONCE, at=AT),
            clear_caches,
        ),
        "floor: 8 bare P-384 report signatures": (signatures_only, None),
    }
    receipt_runs = {
        "receipt, EIP-191 secp256k1 recovery": (lambda: verify_receipt(ecdsa), None),
        "receipt, Ed25519": (lambda: verify_receipt(ed), None),
    }
    print(f"rounds: {runs} (variants interleaved within each round)\n")
    print("| what | P50 | P99 | throughput |")
    print("|---|---|---|---|")
    for name, samples in interleaved(payload_runs, runs).items():
        row(name, samples, "payloads")
    for name, samples in interleaved(receipt_runs, runs).items():
        row(name, samples, "receipts")


if __name__ == "__main__":
    main()
