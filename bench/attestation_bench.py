"""Verification throughput of the real NEAR AI bundle, side by side with dcap-qvl alone.

Measured in one run, interleaved round by round so that machine noise hits every variant alike:

- ``dcap-qvl alone``: ``dcap_qvl.verify`` of the model quote with pre-parsed collateral;
- ``non-GPU part``: ``verify_report`` of the model attestation without its ``nvidia_payload``
  (quote parse, dcap-qvl, collateral freshness, report_data binding, event-log replay of 30
  events, compose and info checks, measurements);
- ``bundle``: ``verify_report`` of the model attestation (TDX + 8 GPUs + event log + binding);
- ``bundle + JSON``: the same, starting from the file's bytes (json.loads included);
- ``full file``: the whole file (gateway + model; at this time the gateway's collateral is not
  yet valid, so its verdict is ``failed``, which dcap-qvl decides early).

Run: ``.venv/bin/python bench/attestation_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import dcap_qvl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teelog.attestation import Collateral, load_collateral, verify_report  # noqa: E402

BUNDLE = ROOT / "tests/data/gpu/nearai-cloud-gpt-oss-120b-2026-04/attestation_report.json"
COLLATERAL = ROOT / "tests/data/tdx/dcapqvl_tdx_v5.collateral.json"
GATEWAY_COLLATERAL = ROOT / "tests/data/tdx/nearmpc_2026_tdx_v4.collateral.json"
AT = 1773200000  # tests/data/tdx/README.md: the model quote verifies UpToDate at this time
NONCE = "deadbeef" + "0" * 54 + "01"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    args = parser.parse_args()
    rounds, per_round = (5, 20) if args.quick else (15, 60)

    raw_file = BUNDLE.read_bytes()
    full = json.loads(raw_file)
    model = full["model_attestations"][0]
    bundle = {"model_attestations": [model]}
    bundle_bytes = json.dumps(bundle).encode()
    no_gpu = {"model_attestations": [{k: v for k, v in model.items() if k != "nvidia_payload"}]}
    quote = bytes.fromhex(model["intel_quote"])
    doc = load_collateral(COLLATERAL.read_bytes())
    source = Collateral([doc, load_collateral(GATEWAY_COLLATERAL.read_bytes())])
    qvl = dcap_qvl.QuoteCollateralV3.from_json(COLLATERAL.read_text())

    def dcap_alone() -> None:
        report = dcap_qvl.verify(quote, qvl, AT)
        assert report.status == "UpToDate"

    def non_gpu() -> None:
        result = verify_report(no_gpu, nonce=NONCE, at=AT, collateral=source)
        assert result.status == "verified", result.to_json()

    def whole_bundle() -> None:
        result = verify_report(bundle, nonce=NONCE, at=AT, collateral=source)
        assert result.status == "verified"

    def bundle_from_bytes() -> None:
        result = verify_report(bundle_bytes, nonce=NONCE, at=AT, collateral=source)
        assert result.status == "verified"

    def full_file() -> None:
        result = verify_report(raw_file, nonce=NONCE, at=AT, collateral=source)
        assert [v.status for v in result.attestations] == ["failed", "verified"]

    variants = {
        "dcap-qvl alone (model quote)": dcap_alone,
        "non-GPU part (TDX + event log + binding)": non_gpu,
        "bundle (TDX + 8 GPUs + event log + binding)": whole_bundle,
        "bundle + JSON parse": bundle_from_bytes,
        "full file (gateway + model)": full_file,
    }
    for fn in variants.values():
        for _ in range(3):
            fn()

    samples: dict[str, list[float]] = {name: [] for name in variants}
    round_medians: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times = []
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            samples[name] += times
            round_medians[name].append(statistics.median(times))

    print(f"NEAR AI bundle {BUNDLE.name}, as of {AT}; {rounds} rounds x {per_round} calls")
    print(f"{'variant':<46} {'median ms':>10} {'P50 ms':>8} {'P99 ms':>8} {'per s':>8}")
    for name in variants:
        med = statistics.median(round_medians[name]) * 1000
        ordered = sorted(samples[name])
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        print(f"{name:<46} {med:>10.3f} {p50:>8.3f} {p99:>8.3f} {1000 / med:>8.1f}")
    base = statistics.median(round_medians["dcap-qvl alone (model quote)"])
    ratios = [
        a / b
        for a, b in zip(
            round_medians["non-GPU part (TDX + event log + binding)"],
            round_medians["dcap-qvl alone (model quote)"],
            strict=True,
        )
    ]
    bundle_med = statistics.median(round_medians["bundle (TDX + 8 GPUs + event log + binding)"])
    print()
    ratio = statistics.median(ratios)
    print(f"non-GPU part / dcap-qvl alone: median of per-round ratios {ratio:.2f}x (goal <= 1.5x)")
    print(f"bundle throughput: {1 / bundle_med:.0f} bundles/s (goal >= 100)")
    print(f"dcap-qvl alone: {base * 1000:.3f} ms")


if __name__ == "__main__":
    main()
