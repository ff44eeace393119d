"""nvidia_payload decoding: every real encoding, and clear errors for everything else."""

from __future__ import annotations

import base64
import json

import pytest
from gpu_helpers import DATA, LEGACY, NEAR, NVAT, hex_sample, near_payload, near_payload_text
from teelog.attestation.errors import AttestationInputError
from teelog.attestation.gpu.payload import (
    PayloadError,
    decode_certificate_chain,
    decode_nvidia_payload,
    decode_report,
)


def test_near_payload_string_decodes_eight_gpus_with_arch_and_nonce():
    payload = decode_nvidia_payload(near_payload_text())
    assert payload.format == "nras-request"
    assert payload.arch == "HOPPER"
    assert payload.nonce == bytes.fromhex("deadbeef" + "00" * 27 + "01")
    assert len(payload.evidence) == 8
    for i, ev in enumerate(payload.evidence):
        assert (ev.index, ev.arch, ev.encoding, len(ev.report)) == (i, "HOPPER", "base64", 4266)
        assert len(ev.certificates) == 5
        assert ev.nonce is None


def test_payload_object_and_double_encoded_string_decode_the_same():
    text = near_payload_text()
    assert decode_nvidia_payload(json.loads(text)) == decode_nvidia_payload(text)
    assert decode_nvidia_payload(json.dumps(text)) == decode_nvidia_payload(text)
    assert decode_nvidia_payload(text.encode()) == decode_nvidia_payload(text)


def test_bundle_field_is_the_same_string_as_the_derived_payload_file():
    bundle = json.loads((NEAR / "attestation_report.json").read_text())
    field = bundle["model_attestations"][0]["nvidia_payload"]
    assert decode_nvidia_payload(field) == decode_nvidia_payload(near_payload_text())


def test_legacy_base64_of_hex_text_without_entry_arch():
    payload = decode_nvidia_payload((LEGACY / "nvidia_payload.json").read_text())
    (ev,) = payload.evidence
    assert ev.encoding == "base64-hex"
    assert ev.arch == "HOPPER"  # from the top level
    assert len(ev.report) == 4115
    assert ev.report[:4] == bytes.fromhex("11e001ff")


def test_nvat_array_with_per_entry_nonce():
    payload = decode_nvidia_payload((NVAT / "multi_gpu_hopper.json").read_text())
    assert payload.format == "evidence-array"
    assert payload.nonce is None
    assert len(payload.evidence) == 4
    assert all(ev.nonce == ev.report[4:36] for ev in payload.evidence)


def test_entry_nonce_of_the_june_2026_near_shape_is_kept():
    doc = near_payload()
    for entry in doc["evidence_list"]:
        entry["nonce"] = doc["nonce"]
    payload = decode_nvidia_payload(doc)
    assert {ev.nonce for ev in payload.evidence} == {payload.nonce}


def test_plain_hex_report_and_pem_text_certificate():
    payload = decode_nvidia_payload(
        hex_sample("blackwellAttestationReport.txt", "blackwellCertChain.txt")
    )
    (ev,) = payload.evidence
    assert ev.encoding == "hex"
    assert len(ev.report) == 4121
    assert len(ev.certificates) == 5
    assert ev.arch is None


def test_chutes_gpu_evidence_entry_does_not_take_its_raw_nonce_as_gpu_nonce():
    doc = near_payload()
    chutes = {"nonce": "ab" * 32, "gpu_evidence": doc["evidence_list"]}
    payload = decode_nvidia_payload(chutes)
    assert payload.nonce is None
    assert len(payload.evidence) == 8


def test_lowercase_arch_names_are_normalised():
    doc = near_payload()
    doc["arch"] = "Hopper"
    for entry in doc["evidence_list"]:
        del entry["arch"]
    assert {ev.arch for ev in decode_nvidia_payload(doc).evidence} == {"HOPPER"}


@pytest.mark.parametrize(
    "path",
    [
        DATA / "reports" / "dstack_nvattest_gpu_attestation_h100.json",
        DATA / "reports" / "vllmproxy_nras_response_8gpu_ppcie.json",
    ],
    ids=["nvattest-result", "nras-response"],
)
def test_nvidia_verdicts_are_rejected_as_not_evidence(path):
    with pytest.raises(PayloadError, match="not GPU evidence"):
        decode_nvidia_payload(path.read_text())


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "not valid JSON"),
        ("42", "must be a JSON object or list"),
        ({"foo": 1}, "has no evidence_list"),
        ({"evidence_list": []}, "evidence list is empty"),
        ({"evidence_list": {}}, "must be a list"),
        ({"evidence_list": [1]}, r"evidence_list\[0\] must be an object"),
        ({"evidence_list": [{"evidence": "AA=="}]}, "has no 'certificate'"),
        ({"evidence_list": [{"evidence": "!!", "certificate": "x"}]}, "neither base64 nor hex"),
        ({"evidence_list": [{"evidence": 5, "certificate": "x"}]}, "must be a string"),
        ({"nonce": "xyz", "evidence_list": []}, "nonce is not hex"),
        ({"arch": "HOP PER", "evidence_list": []}, "must be a name"),
    ],
)
def test_bad_payloads_raise_payload_error(doc, message):
    with pytest.raises(PayloadError, match=message):
        decode_nvidia_payload(doc)


def test_payload_errors_are_attestation_input_errors():
    with pytest.raises(AttestationInputError):
        decode_nvidia_payload("[]")


def test_certificate_field_without_pem_block_is_rejected():
    with pytest.raises(PayloadError, match="holds no PEM certificate"):
        decode_certificate_chain(base64.b64encode(b"hello").decode())
    with pytest.raises(PayloadError, match="not valid base64"):
        decode_certificate_chain("%%%")


def test_unrecognisable_base64_evidence_is_passed_on_for_the_parser_to_reject():
    raw, encoding = decode_report(base64.b64encode(b"\x00\x01\x02").decode())
    assert (raw, encoding) == (b"\x00\x01\x02", "base64")
