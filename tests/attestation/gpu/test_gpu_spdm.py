"""SPDM GET_MEASUREMENTS / MEASUREMENTS parsing of every real report (fixtures README table)."""

from __future__ import annotations

import base64
import json

import pytest
from gpu_helpers import LEGACY, NEAR, NVAT, NVLOCAL, flip
from teelog.attestation.gpu.payload import decode_nvidia_payload
from teelog.attestation.gpu.spdm import (
    SpdmError,
    format_vbios_version,
    parse_attestation_report,
)


def _first_report(name: str) -> bytes:
    paths = {
        "near": NEAR / "model0_nvidia_payload.json",
        "legacy": LEGACY / "nvidia_payload.json",
        "nvat-hopper": NVAT / "hopper_evidence.json",
    }
    if name in paths:
        return decode_nvidia_payload(paths[name].read_text()).evidence[0].report
    files = {
        "blackwell": NVAT / "blackwellAttestationReport.txt",
        "hopper-535": NVAT / "hopper_535.86.09_AttestationReport.txt",
        "nvlocal-550": NVLOCAL / "hopper_550.90.07_AttestationReport.txt",
    }
    return bytes.fromhex(files[name].read_text().strip())


# fixture, report bytes, opaque len, non-zero blocks, driver, VBIOS, project/sku/chip sku,
# NVDEC0, type 21, opaque version, feature flag, opaque TLV type order: tests/data/gpu/README.md
README_TABLE = [
    (
        "near",
        4266,
        571,
        28,
        "570.172.08",
        "96.00.cf.00.02",
        ("G520", "0280", "895"),
        "disabled",
        "enabled",
        None,
        None,
        [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 21, 22],
    ),
    (
        "legacy",
        4115,
        420,
        27,
        "550.135",
        "96.00.9d.00.02",
        ("G520", "0280", "895"),
        "disabled",
        "disabled",
        None,
        None,
        [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 21],
    ),
    (
        "nvat-hopper",
        4274,
        579,
        28,
        "590.12",
        "96.00.a5.00.01",
        ("G520", "0200", "885"),
        "disabled",
        "enabled",
        1,
        "PPCIE",
        [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 21, 22, 34, 36],
    ),
    (
        "blackwell",
        4121,
        426,
        31,
        "575.32",
        "97.00.88.00.0f",
        ("G525", "0220", "886"),
        "disabled",
        None,
        0,
        None,
        [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 33, 34],
    ),
    (
        "hopper-535",
        4052,
        357,
        26,
        "535.86.09",
        "96.00.5e.00.01",
        ("1010", "0200", "882"),
        "disabled",
        None,
        None,
        None,
        [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11],
    ),
    (
        "nvlocal-550",
        4117,
        422,
        26,
        "550.90.07",
        "96.00.9f.00.01",
        ("1010", "0200", "882"),
        "disabled",
        "disabled",
        None,
        None,
        [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 21],
    ),
]


@pytest.mark.parametrize("row", README_TABLE, ids=[r[0] for r in README_TABLE])
def test_every_real_report_parses_to_the_readme_values(row):
    (name, size, opaque_len, nonzero, driver, vbios, board, nvdec0, pcie, version, flag, order) = (
        row
    )
    raw = _first_report(name)
    report = parse_attestation_report(raw)
    opaque = report.response.opaque
    assert len(raw) == size
    assert sum(4 + len(f.value) for f in opaque.fields) == opaque_len
    assert report.nonzero_blocks == nonzero
    assert opaque.driver_version == driver
    assert opaque.vbios_version == vbios
    assert (opaque.project, opaque.project_sku, opaque.chip_sku) == board
    assert opaque.nvdec0_status == nvdec0
    assert opaque.protected_pcie_status == pcie
    assert opaque.opaque_data_version == version
    assert opaque.feature_flag == flag
    assert [f.type for f in opaque.fields] == order
    # Common to all: SPDM 1.1, 0xE0 / 0x01 / 0xFF, 0x60, 64 DMTF SHA-384 blocks, 96-byte sig.
    req, resp = report.request, report.response
    assert (req.version, req.code, req.param1, req.param2, req.slot_id) == (0x11, 0xE0, 1, 0xFF, 0)
    assert (resp.version, resp.code) == (0x11, 0x60)
    assert [b.index for b in resp.blocks] == list(range(1, 65))
    assert all(b.dmtf_type == 1 and len(b.value) == 48 for b in resp.blocks)
    assert len(report.signature) == 96
    assert report.signed_bytes + report.signature == raw


def test_near_report_nonces_are_the_request_nonce_and_a_gpu_random_responder_nonce():
    payload = json.loads((NEAR / "model0_nvidia_payload.json").read_text())
    reports = [
        parse_attestation_report(base64.b64decode(e["evidence"])) for e in payload["evidence_list"]
    ]
    assert {r.nonce.hex() for r in reports} == {payload["nonce"]}
    assert len({r.response.nonce for r in reports}) == 8


def test_near_report_switch_pdis_and_msrscnt_decode():
    opaque = parse_attestation_report(_first_report("near")).response.opaque
    assert len(opaque.switch_pdis) == 4
    assert len(opaque.msrscnt) == 64
    assert len(opaque.fwid) == 48
    assert opaque.board_id == 1340


def test_vbios_version_formats_little_endian_word_then_fifth_byte():
    assert format_vbios_version(bytes.fromhex("00cf009602000000")) == "96.00.cf.00.02"
    with pytest.raises(SpdmError):
        format_vbios_version(b"\x00\x01")


def test_measurement_lookup_is_by_spdm_index():
    report = parse_attestation_report(_first_report("near"))
    assert report.measurement(1) == report.response.blocks[0].value
    assert report.measurement(65) is None


def _opaque_offset(raw: bytes) -> int:
    record_len = int.from_bytes(raw[37 + 5 : 37 + 8], "little")
    return 37 + 8 + record_len + 32  # at OpaqueLength


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r[:36], "shorter than the 37-byte request"),
        (lambda r: r[:1] + b"\x61" + r[2:], "not GET_MEASUREMENTS"),
        (lambda r: b"\x21" + r[1:], "unsupported SPDM version"),
        (lambda r: r[:2] + b"\x00" + r[3:], "does not ask for a signature"),
        (lambda r: r[:38] + b"\x61" + r[39:], "not MEASUREMENTS"),
        (lambda r: r[:37] + b"\x12" + r[38:], "!= request version"),
        (lambda r: r[:41] + b"\x3f" + r[42:], "header says 63"),
        (lambda r: r[:42] + b"\xff\xff\xff" + r[45:], "overruns the report"),
        (lambda r: r[:46] + b"\x00" + r[47:], "is not DMTF"),
        (lambda r: r[:45] + b"\x02" + r[46:], "appears twice"),
        (lambda r: r[:-1], "leaves 95 bytes"),
        (lambda r: r + b"\x00", "unexpected bytes after the signature"),
    ],
    ids=[
        "truncated-request",
        "request-code",
        "version",
        "unsigned",
        "response-code",
        "version-mismatch",
        "block-count",
        "record-length",
        "not-dmtf",
        "duplicate-index",
        "short-signature",
        "trailing-bytes",
    ],
)
def test_malformed_reports_raise_spdm_error_saying_what(mutate, message):
    with pytest.raises(SpdmError, match=message):
        parse_attestation_report(mutate(_first_report("near")))


def test_opaque_tlv_overrunning_its_length_is_rejected():
    raw = _first_report("near")
    off = _opaque_offset(raw) + 2  # first TLV: type u16, size u16
    bad = raw[: off + 2] + b"\xff\x7f" + raw[off + 4 :]
    with pytest.raises(SpdmError, match="overruns the opaque data"):
        parse_attestation_report(bad)


def test_non_ascii_driver_version_is_rejected():
    raw = bytearray(_first_report("near"))
    report = parse_attestation_report(bytes(raw))
    driver = report.response.opaque.raw("DRIVER_VERSION")
    at = bytes(raw).index(driver)
    raw[at] = 0xFF
    with pytest.raises(SpdmError, match="DRIVER_VERSION is not ASCII"):
        parse_attestation_report(bytes(raw))


def test_a_flipped_measurement_byte_still_parses_the_signature_catches_it():
    raw = _first_report("near")
    report = parse_attestation_report(flip(raw, 37 + 8 + 7))
    assert report.measurement(1) != parse_attestation_report(raw).measurement(1)


def test_non_bytes_input_is_a_typed_error():
    with pytest.raises(SpdmError):
        parse_attestation_report("11e0")  # type: ignore[arg-type]
