"""Quote parsing against the real quotes of tests/data/tdx (values from its README)."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from attestation_data import REPORTS, TDX, V4_TD_ATTRIBUTES, flip, quote_bytes
from teelog.attestation.errors import QuoteFormatError
from teelog.attestation.quote import (
    TD_ATTRIBUTES_OFFSET,
    TD_MRTD_OFFSET,
    SgxReport,
    TdAttributes,
    TdReport,
    Xfam,
    decode_quote_bytes,
    parse_quote,
)


def test_v4_quote_fields_match_the_readme():
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    assert hashlib.sha256(raw).hexdigest() == (
        "c42f9164325024bca2757bc8819b11879a0a369132ea4e2b7c85df4805ea72db"
    )
    q = parse_quote(raw)
    assert (q.header.version, q.header.tee_type, q.header.attestation_key_type) == (4, 0x81, 2)
    assert q.is_tdx and isinstance(q.report, TdReport) and q.report.version == "1.0"
    r = q.report
    assert r.tee_tcb_svn.hex() == "06010300000000000000000000000000"
    assert r.mr_seam.hex().startswith("5b38e33a6487958b72c3c12a938eaa5e")
    assert r.mr_td.hex() == (
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
        "de03ae6dc5f87f27428b2538873118b7"
    )
    assert r.mr_config_id == bytes(48)
    assert r.rtmrs[0].hex().startswith("44c0197b39157fdd")
    assert r.rtmrs[3] == bytes(48)
    assert r.report_data.hex().startswith("9a9d48e7f6799642")
    assert q.fmspc == "b0c06f000000"
    assert q.certification.ppid == "811dca2a26b952e85bb6448b097ba4fd"
    assert q.certification.ca == "platform"
    assert q.certification.cert_type == 5
    assert q.report_data_offset == 568
    assert raw[q.report_data_offset : q.report_data_offset + 64] == r.report_data


def test_v5_quote_is_td_report_1_5_shifted_by_the_body_descriptor():
    raw = quote_bytes("dcapqvl_tdx_v5.quote.bin")
    q = parse_quote(raw)
    assert q.header.version == 5 and q.body_offset == 54 and q.body_size == 648
    assert isinstance(q.report, TdReport) and q.report.version == "1.5"
    assert q.report.mr_td.hex().startswith("273828c46252fcbd")
    assert q.report.tee_tcb_svn2 is not None and q.report.mr_service_td == bytes(48)
    assert all(r == bytes(48) for r in q.report.rtmrs)
    assert q.report_data_offset == 574
    assert raw[574:638] == q.report.report_data
    assert q.fmspc == "90c06f000000"
    assert q.to_json()["report"]["version"] == "1.5"


def test_sgx_v3_quote_parses_the_enclave_report():
    q = parse_quote(quote_bytes("dcapqvl_sgx_v3.quote.bin"))
    assert not q.is_tdx and isinstance(q.report, SgxReport)
    assert q.report.mr_enclave.hex().startswith("33d8736db756ed49")
    assert q.report.mr_signer.hex().startswith("815f42f11cf64430")
    assert q.report.report_data.rstrip(b"\0") == b"Hello, world!"
    assert q.fmspc == "00a067110000" and q.certification.ca == "processor"
    assert not q.report.debug


@pytest.mark.parametrize(
    ("name", "mr_config_prefix"),
    [
        ("dcapqvl_nearmpc_tdx_v4.quote.hex", "0112a20aed7d6c68601e9f6e108a93b4"),
        ("nearmpc_2026_tdx_v4.quote.bin", "012911e1f733466216dedb862d6d669e"),
    ],
)
def test_dstack_quotes_carry_the_compose_hash_in_mr_config_id(name, mr_config_prefix):
    q = parse_quote(quote_bytes(name))
    assert q.report.mr_config_id.hex().startswith(mr_config_prefix)
    assert q.report.mr_config_id[33:] == bytes(15)


def test_td_attributes_are_decoded_bit_by_bit():
    q = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    attrs = q.report.td_attributes
    assert attrs.value == 1 << 28
    assert attrs.sept_ve_disable and not attrs.debug and not attrs.pks and not attrs.kl
    assert attrs.flags == ["SEPT_VE_DISABLE"]
    every = TdAttributes((1 << 0) | (1 << 30) | (1 << 31) | (1 << 63) | (1 << 2))
    assert every.debug and every.pks and every.kl and every.perfmon
    assert every.flags == ["DEBUG", "RESERVED2", "PKS", "KL", "PERFMON"]
    assert every.reserved_set == [2]


def test_debug_bit_in_the_raw_quote_is_seen_by_the_parser():
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    assert 48 + TD_ATTRIBUTES_OFFSET == V4_TD_ATTRIBUTES and 48 + TD_MRTD_OFFSET == 184
    q = parse_quote(flip(raw, V4_TD_ATTRIBUTES, 0x01))
    assert q.report.td_attributes.debug
    assert q.report.td_attributes.flags == ["DEBUG", "SEPT_VE_DISABLE"]


def test_xfam_names_the_xsave_features():
    assert Xfam(0xE7 | 0x06 << 16 | 0x02 << 8).features == [
        "X87",
        "SSE",
        "AVX",
        "AVX512_OPMASK",
        "AVX512_ZMM_HI256",
        "AVX512_HI16_ZMM",
        "PKRU",
        "AMX_TILECFG",
        "AMX_TILEDATA",
    ]


def test_quote_text_encodings_decode_to_the_same_bytes():
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    assert decode_quote_bytes(raw.hex()) == raw
    assert decode_quote_bytes("0x" + raw.hex().upper()) == raw
    assert decode_quote_bytes(base64.b64encode(raw).decode()) == raw
    text = (TDX / "dcapqvl_tdx_v4_2024.quote.hex").read_text()
    assert text.startswith("0x") and parse_quote(decode_quote_bytes(text)).header.version == 4


def test_base64_quote_of_the_legacy_sample_parses():
    import json

    doc = json.loads((REPORTS / "privatemlsdk_e2e_quote_sample_2025-01.json").read_text())
    q = parse_quote(decode_quote_bytes(doc["intel_quote"]))
    assert q.is_tdx and q.header.version == 4


@pytest.mark.parametrize("size", [0, 10, 47, 48, 100, 600, 631, 632, 635, 700, 1000, 4000])
def test_truncated_quotes_raise_a_typed_error(size):
    raw = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
    with pytest.raises(QuoteFormatError):
        parse_quote(raw[:size])


def test_unknown_tee_type_and_versions_are_rejected_with_the_reason():
    raw = bytearray(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    bad_tee = bytes(raw[:4]) + struct.pack("<I", 0x42) + bytes(raw[8:])
    with pytest.raises(QuoteFormatError, match="TEE type"):
        parse_quote(bad_tee)
    bad_version = struct.pack("<H", 7) + bytes(raw[2:])
    with pytest.raises(QuoteFormatError, match="version 7"):
        parse_quote(bad_version)


def test_v5_with_an_unknown_body_type_is_rejected():
    raw = bytearray(quote_bytes("dcapqvl_tdx_v5.quote.bin"))
    raw[48:50] = struct.pack("<H", 9)
    with pytest.raises(QuoteFormatError, match="body type 9"):
        parse_quote(bytes(raw))


def test_signature_data_length_beyond_the_end_is_rejected():
    raw = bytearray(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    raw[632:636] = struct.pack("<I", 10**6)
    with pytest.raises(QuoteFormatError, match="signature data"):
        parse_quote(bytes(raw))


def test_non_bytes_input_is_a_typed_error():
    with pytest.raises(QuoteFormatError):
        parse_quote("not bytes")  # type: ignore[arg-type]
