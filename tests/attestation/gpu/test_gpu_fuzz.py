"""Fuzzing every GPU parser: random and mutated real inputs give a typed error, never a crash."""

from __future__ import annotations

import base64
import contextlib
import json

from gpu_helpers import AT, NEAR_NONCE, NVAT, near_payload, report_bytes, with_report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from teelog.attestation.gpu import verify_gpu_evidence
from teelog.attestation.gpu.certs import tcb_info_fwid
from teelog.attestation.gpu.errors import GpuEvidenceError
from teelog.attestation.gpu.nras import load_jwks, parse_detached_eat
from teelog.attestation.gpu.payload import decode_nvidia_payload
from teelog.attestation.gpu.rim import parse_rim
from teelog.attestation.gpu.spdm import parse_attestation_report

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEAR = near_payload()
REPORT = report_bytes(NEAR)
RIM_XML = (NVAT / "NV_GPU_DRIVER_GH100_550.144.03.xml").read_bytes()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def mutated(draw, data: bytes, max_edits: int = 4) -> bytes:
    """``data`` with a few byte flips, insertions, deletions or a truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        if not out:
            break
        pos = draw(st.integers(0, len(out) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "set"]))
        if kind == "flip":
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del out[pos:]
        else:
            out[pos] = draw(st.integers(0, 255))
    return bytes(out)


@FUZZ
@given(st.binary(max_size=5000))
def test_random_bytes_never_crash_the_spdm_parser(data):
    with contextlib.suppress(GpuEvidenceError):
        parse_attestation_report(data)


@FUZZ
@given(mutated(REPORT))
def test_mutated_real_reports_parse_or_raise_spdm_error(data):
    try:
        report = parse_attestation_report(data)
    except GpuEvidenceError:
        return
    assert report.raw == data


@FUZZ
@given(st.one_of(json_values, json_values.map(json.dumps), st.text(max_size=300)))
def test_random_json_and_text_never_crash_the_payload_decoder(doc):
    with contextlib.suppress(GpuEvidenceError):
        decode_nvidia_payload(doc)


@st.composite
def mutated_payloads(draw):
    """The NEAR payload with one field of one entry replaced by a random JSON value."""
    doc = json.loads(json.dumps(NEAR))
    entry = doc["evidence_list"][draw(st.integers(0, 7))]
    key = draw(st.sampled_from(["evidence", "certificate", "arch", "nonce", "extra"]))
    entry[key] = draw(json_values | st.text(alphabet="0123456789abcdefABCDEF+/=", max_size=80))
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["nonce", "arch", "evidence_list"]))] = draw(json_values)
    return doc


@FUZZ
@given(mutated_payloads())
def test_mutated_payloads_decode_or_raise_payload_error(doc):
    with contextlib.suppress(GpuEvidenceError):
        decode_nvidia_payload(doc)


@settings(max_examples=60, deadline=None)
@given(mutated(REPORT, 2))
def test_verifying_mutated_evidence_never_raises_and_never_passes_the_signature(data):
    result = verify_gpu_evidence(with_report(NEAR, data), expected_nonce=NEAR_NONCE, at=AT)
    evidence = next(c for c in result.checks if c.name == "gpu.evidence[0]")
    if data != REPORT:
        assert evidence.status == "fail"
        assert result.status == "failed"


@settings(max_examples=60, deadline=None)
@given(mutated(base64.b64decode(NEAR["evidence_list"][0]["certificate"]), 3))
def test_verifying_with_a_mutated_pem_chain_never_raises(pem):
    doc = json.loads(json.dumps(NEAR))
    doc["evidence_list"][0]["certificate"] = base64.b64encode(pem).decode()
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    assert result.checks


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        mutated(bytes.fromhex("3081ba0201013076301006072a8648ce3d020106052b81040022036200"), 3),
    )
)
def test_random_tcb_info_values_give_a_fwid_or_a_certificate_error(value):
    with contextlib.suppress(GpuEvidenceError):
        tcb_info_fwid(value)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=500), mutated(RIM_XML, 3)))
def test_random_and_mutated_rims_parse_or_raise_rim_error(xml):
    with contextlib.suppress(GpuEvidenceError):
        parse_rim(xml)


@FUZZ
@given(st.one_of(json_values, st.text(max_size=200)))
def test_random_nras_responses_and_jwks_raise_nras_error(doc):
    for parse in (parse_detached_eat, load_jwks):
        with contextlib.suppress(GpuEvidenceError):
            parse(doc)
