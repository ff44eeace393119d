"""Shared data of the attestation tests: real data from tests/data with pinned times.

Every verification time comes from the fixture READMEs (tests/data/tdx/README.md): Intel
collateral is valid only inside its window, so nothing here uses the clock.
"""

from __future__ import annotations

import json
from pathlib import Path

from teelog.attestation.collateral import CollateralDoc, load_collateral
from teelog.attestation.quote import decode_quote_bytes

DATA = Path(__file__).resolve().parents[1] / "data"
TDX = DATA / "tdx"
REPORTS = DATA / "reports"
NEAR_BUNDLE = DATA / "gpu" / "nearai-cloud-gpt-oss-120b-2026-04" / "attestation_report.json"
NEAR_NONCE = "deadbeef" + "0" * 54 + "01"

# Pinned verification times (tests/data/tdx/README.md, "Verification results").
AT_V4_UPTODATE = 1751624191
AT_V5 = 1772707803
AT_SGX = 1751624924
AT_NEARMPC_2025 = 1757462400
AT_NEARMPC_2026 = 1787894484
AT_NEAR_MODEL = 1773200000  # model quote + dcapqvl_tdx_v5 collateral
AT_NEAR_GATEWAY = 1787894484  # gateway quote + nearmpc_2026_tdx_v4 collateral

# Offsets in a TDX v4 quote (header 48 + TD report 1.0 fields; README "How verification fails").
V4_MRTD = 184
V4_TD_ATTRIBUTES = 168
V4_REPORT_DATA = 568
V4_QE_REPORT_BYTE = 700


def quote_bytes(name: str) -> bytes:
    return decode_quote_bytes((TDX / name).read_bytes())


def collateral_doc(stem: str) -> CollateralDoc:
    return load_collateral((TDX / f"{stem}.collateral.json").read_bytes())


def near_bundle() -> dict:
    return json.loads(NEAR_BUNDLE.read_text())


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


ALL_COLLATERAL_STEMS = (
    "dcapqvl_tdx_v4_uptodate",
    "dcapqvl_tdx_v5",
    "dcapqvl_sgx_v3",
    "dcapqvl_nearmpc_tdx_v4",
    "nearmpc_2026_tdx_v4",
)
