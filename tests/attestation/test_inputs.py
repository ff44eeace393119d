"""One input detection and one report-format detection (attestation/inputs.py), on real data."""

from __future__ import annotations

import base64
import json

import pytest
from attestation_data import NEAR_BUNDLE, REPORTS, TDX, near_bundle
from teelog.attestation.inputs import (
    MAX_JSON_DEPTH,
    UnknownInputError,
    UntrustedJSONError,
    detect_input_kind,
    detect_report_format,
    parse_json,
)
from teelog.attestation.report import report_attestations

GETQUOTE = REPORTS / "vllmproxy_sample_dstack_getquote.json"
GPU_PAYLOAD = NEAR_BUNDLE.parent / "model0_nvidia_payload.json"
SIGNATURES = REPORTS / "nearai_docs_signature_samples.json"


def test_a_bare_dstack_getquote_answer_is_a_vllm_proxy_report_for_every_door():
    doc = json.loads(GETQUOTE.read_bytes())
    assert detect_report_format(doc) == "vllm-proxy"
    detected = detect_input_kind(GETQUOTE.read_bytes())
    assert (detected.kind, detected.report_format) == ("report", "vllm-proxy")
    fmt, atts = report_attestations(doc)  # and the verifier reads it the same way
    assert fmt == "vllm-proxy" and atts[0].quote == doc["quote"]


def test_each_real_input_is_recognised_as_what_it_is():
    assert detect_input_kind(NEAR_BUNDLE.read_bytes()).kind == "bundle"
    assert detect_input_kind(GPU_PAYLOAD.read_bytes()).kind == "gpu"
    quote = (TDX / "dcapqvl_tdx_v4_uptodate.quote.bin").read_bytes()
    assert detect_input_kind(quote).kind == "quote"
    assert detect_input_kind((TDX / "dcapqvl_tdx_v4_2024.quote.hex").read_bytes()).kind == "quote"
    model = near_bundle()["model_attestations"][0]
    assert detect_input_kind(json.dumps(model).encode()).kind == "report"
    evidence_list = json.loads(GPU_PAYLOAD.read_bytes())["evidence_list"]
    assert detect_input_kind(json.dumps(evidence_list).encode()).kind == "gpu"


def test_signature_responses_receipt_entries_and_lookups_are_told_apart():
    sig = {"text": "a:b", "signature": "0x00", "signing_address": "0x" + "0" * 40}
    assert detect_input_kind(json.dumps(sig).encode()).kind == "receipt"
    assert detect_input_kind(b'{"type": "receipt", "v": 1}').kind == "receipt"
    lookup = {"entry_b64": base64.b64encode(b"{}").decode(), "tlog_proof": "c2sp..."}
    assert detect_input_kind(json.dumps(lookup).encode()).kind == "proof"
    assert detect_input_kind(b"c2sp.org/tlog-proof@v1\nindex 0\n\nnote").kind == "proof"


def test_json_of_no_known_kind_is_refused_with_its_keys():
    with pytest.raises(UnknownInputError, match="keys: error"):
        detect_input_kind(b'{"error": "x"}')
    with pytest.raises(UnknownInputError, match="a JSON list"):
        detect_input_kind(b"[1, 2]")
    assert detect_report_format([1, 2]) is None
    assert detect_report_format({"error": "x"}) is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"[" * 1000 + b"]" * 1000, "nested 1000 levels deep"),
        (b'{"n": ' + b"9" * 4301 + b"}", "not JSON"),
        (b'{"s": "\\ud800"}', "lone surrogate"),
        (b'{"s": "\xff"}', "not UTF-8"),
    ],
)
def test_hostile_json_is_one_typed_error(data, why):
    with pytest.raises(UntrustedJSONError, match=why):
        parse_json(data)
    with pytest.raises(UntrustedJSONError, match=why):
        detect_input_kind(data)


def test_depth_limit_counts_brackets_outside_strings_only():
    assert parse_json(b'{"s": "' + b"[" * 500 + b'"}') == {"s": "[" * 500}
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(nested) is not None
    # A surrogate pair (a real character) is text, not a lone surrogate.
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"
