"""Fuzzing every parser: random and mutated real inputs give a typed error, never a crash.

A "typed error" is :class:`AttestationInputError` (a ValueError subclass); anything else —
IndexError, KeyError, TypeError, a Rust panic — fails the test. Timeouts catch hangs.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from attestation_data import AT_NEAR_MODEL, AT_V4_UPTODATE, collateral_doc, near_bundle, quote_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from teelog.attestation import (
    AttestationInputError,
    decode_quote_bytes,
    load_collateral,
    parse_event_log,
    parse_quote,
    report_attestations,
    verify_quote,
    verify_report,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
V4 = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
V5 = quote_bytes("dcapqvl_tdx_v5.quote.bin")
SGX = quote_bytes("dcapqvl_sgx_v3.quote.bin")
COLL = collateral_doc("dcapqvl_tdx_v4_uptodate")
COLL_JSON = json.loads(COLL.canonical)
MODEL = near_bundle()["model_attestations"][0]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` with a few byte edits, a truncation or an extension."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "extend", "set"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "extend":
            data += draw(st.binary(max_size=64))
        elif data:
            i = draw(st.integers(0, len(data) - 1))
            data[i : i + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


def _parse_or_typed_error(data: bytes) -> None:
    with contextlib.suppress(AttestationInputError):
        parse_quote(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_parse_quote_random_bytes(data):
    _parse_or_typed_error(data)


@FUZZ
@given(st.one_of(mutated(V4), mutated(V5), mutated(SGX)))
def test_parse_quote_mutated_real_quotes(data):
    _parse_or_typed_error(data)


@FUZZ
@given(st.one_of(st.binary(max_size=256), st.text(max_size=256)))
def test_decode_quote_bytes_never_crashes(data):
    with contextlib.suppress(AttestationInputError):
        decode_quote_bytes(data)


def _signed_content(data: bytes) -> tuple[bytes, list[bytes]]:
    """What the signatures and the certificate chain cover: every byte before the PCK chain,
    and the chain's certificates. PEM text between certificates and bytes after the
    certification data (the real quote ends in 70 padding zeros) are covered by nothing."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    quote = parse_quote(data)
    pem = quote.certification.pck_chain_pem or b""
    start = data.index(pem) if pem else len(data)
    certs = [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem)]
    return data[:start], certs


@settings(max_examples=40, deadline=None)
@given(mutated(V4))
def test_mutated_quote_is_never_verified_unless_its_signed_content_is_unchanged(data):
    try:
        result = verify_quote(data, at=AT_V4_UPTODATE, collateral=COLL)
    except AttestationInputError:
        return
    if result.status == "verified":
        assert _signed_content(data) == _signed_content(V4)


@FUZZ
@given(json_values)
def test_load_collateral_random_json(value):
    with contextlib.suppress(AttestationInputError):
        load_collateral(json.dumps(value))


@FUZZ
@given(st.sampled_from(sorted(COLL_JSON)), json_values | st.text(max_size=64))
def test_load_collateral_with_one_field_replaced(field, value):
    with contextlib.suppress(AttestationInputError):
        load_collateral({**COLL_JSON, field: value})


@FUZZ
@given(json_values)
def test_parse_event_log_random_json(value):
    with contextlib.suppress(AttestationInputError):
        parse_event_log(json.dumps(value))


@FUZZ
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "imr": st.integers(-2, 6) | st.text(max_size=2),
                "event_type": st.integers(-1, 2**33),
                "digest": st.text("0123456789abcdefxyz", max_size=100),
                "event": st.text(max_size=10) | st.integers(),
                "event_payload": st.text("0123456789abcdef", max_size=40),
                "version": st.integers(0, 3),
            },
        ),
        max_size=6,
    )
)
def test_parse_event_log_structured_entries(entries):
    try:
        log = parse_event_log(entries)
    except AttestationInputError:
        return
    with contextlib.suppress(AttestationInputError):
        log.replay()


@FUZZ
@given(json_values)
def test_report_detection_random_documents(value):
    if not isinstance(value, dict):
        return
    with contextlib.suppress(AttestationInputError):
        report_attestations(value)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(MODEL)),
    json_values,
)
def test_verify_report_with_one_model_field_replaced(field, value):
    doc = {"model_attestations": [{**MODEL, field: value}]}
    try:
        result = verify_report(doc, at=AT_NEAR_MODEL, collateral=None)
    except AttestationInputError:
        return
    assert result.status != "verified"  # no collateral: never verified


@pytest.mark.parametrize("cut", [0, 1, 100, 1000, 10000])
def test_truncated_report_json_is_a_typed_error(cut):
    text = json.dumps({"model_attestations": [MODEL]})[:cut]
    with pytest.raises(AttestationInputError):
        verify_report(text, at=AT_NEAR_MODEL, collateral=None)
