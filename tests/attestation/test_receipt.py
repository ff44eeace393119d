"""Receipts: the real NEAR AI signature samples, our signers, and forged / re-used signatures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st
from teelog.attestation.errors import ReportFormatError
from teelog.attestation.receipt import parse_signed_text, signed_text, verify_receipt
from teelog.attestation.signing import (
    EcdsaSigner,
    Ed25519Signer,
    recover_ecdsa_address,
    verify_ed25519,
)

SAMPLES = json.loads(
    (
        Path(__file__).resolve().parents[1]
        / "data"
        / "reports"
        / "nearai_docs_signature_samples.json"
    ).read_text()
)["samples"]
BY_ID = {s["id"]: s for s in SAMPLES}


def _statuses(verdict) -> dict[str, str]:
    return {c.name: c.status for c in verdict.checks}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["id"] for s in SAMPLES])
def test_docs_samples_match_their_expected_recovery(sample):
    sig = sample["signature_response"]
    expected = sample["expected"]
    assert recover_ecdsa_address(sig["text"], sig["signature"]) == expected["recovered_address"]
    verdict = verify_receipt(sig)
    want = "pass" if expected["signature_valid"] else "fail"
    assert _statuses(verdict)["receipt.signature"] == want
    assert verdict.role == "receipt"
    assert verdict.signing_algo == "ecdsa"


def test_valid_sample_with_its_attested_signer_is_verified_case_insensitively():
    sig = BY_ID["C_valid"]["signature_response"]
    verdict = verify_receipt(sig, expected_signers={sig["signing_address"].lower()})
    assert verdict.status == "verified"


def test_valid_signature_without_attested_signers_is_unverifiable():
    verdict = verify_receipt(BY_ID["A_valid_2025-08"]["signature_response"])
    assert verdict.status == "unverifiable"
    assert _statuses(verdict)["receipt.signer"] == "skip"


def test_reused_signature_from_the_docs_fails_even_with_the_right_signer_set():
    sig = BY_ID["B_invalid_copy_paste"]["signature_response"]
    verdict = verify_receipt(sig, expected_signers={sig["signing_address"]})
    assert verdict.status == "failed"
    assert "recovers to 0x7D5A20391452d3bb2c32B1a7C49B948c1D171Ee0" in verdict.checks[0].detail


def test_docs_streaming_response_body_reproduces_its_signed_hash_only_with_the_blank_line():
    sample = BY_ID["B_invalid_copy_paste"]
    body = sample["response_body_example"].encode()
    verdict = verify_receipt(sample["signature_response"], response=body)
    hashes = verdict.check("receipt.hashes")
    assert (hashes.status, hashes.required) == ("skip", False)  # request body not given
    assert "matches" in hashes.detail
    stripped = verify_receipt(sample["signature_response"], response=body.rstrip(b"\n"))
    assert _statuses(stripped)["receipt.hashes"] == "fail"


def test_signer_not_among_the_attested_keys_fails():
    sig = BY_ID["C_valid"]["signature_response"]
    verdict = verify_receipt(sig, expected_signers={"0x" + "11" * 20})
    assert _statuses(verdict)["receipt.signer"] == "fail"
    assert verdict.status == "failed"


@pytest.fixture(scope="module")
def ecdsa() -> EcdsaSigner:
    return EcdsaSigner(hashlib.sha256(b"teelog test key").digest())


@pytest.fixture(scope="module")
def ed25519() -> Ed25519Signer:
    return Ed25519Signer(hashlib.sha256(b"teelog test key").digest())


REQUEST = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
RESPONSE = b'{"id":"chatcmpl-1","choices":[{"message":{"content":"hello \xc3\xa9"}}]}'


def _receipt(signer, text: str) -> dict:
    return {
        "text": text,
        "signature": signer.sign(text),
        "signing_address": signer.address,
        "signing_algo": signer.algo,
    }


@pytest.mark.parametrize("which", ["ecdsa", "ed25519"])
def test_our_signers_make_receipts_that_verify_end_to_end(which, ecdsa, ed25519):
    signer = ecdsa if which == "ecdsa" else ed25519
    text = signed_text(REQUEST, RESPONSE)
    verdict = verify_receipt(
        _receipt(signer, text),
        request=REQUEST,
        response=RESPONSE,
        expected_signers={signer.address.upper()},
    )
    assert verdict.status == "verified", verdict.to_json()


def test_ecdsa_signer_interoperates_with_eth_account(ecdsa):
    text = signed_text(REQUEST, RESPONSE, model="openai/gpt-oss-120b")
    signature = ecdsa.sign(text)
    assert signature.startswith("0x") and len(signature) == 132
    assert Account.recover_message(encode_defunct(text=text), signature=signature) == ecdsa.address
    theirs = Account.sign_message(encode_defunct(text=text), ecdsa.private_bytes)
    assert recover_ecdsa_address(text, theirs.signature.hex()) == ecdsa.address


def test_ed25519_signature_format_and_rfc8032_vector():
    # RFC 8032 §7.1 TEST 1: empty message.
    signer = Ed25519Signer(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert signer.address == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert signer.sign("") == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_model_prefixed_text_carries_the_model_into_the_verdict(ecdsa):
    text = signed_text(REQUEST, RESPONSE, model="org/model:v1")
    assert parse_signed_text(text)[0] == "org/model:v1"
    verdict = verify_receipt(_receipt(ecdsa, text), request=REQUEST, response=RESPONSE)
    assert verdict.model == "org/model:v1"
    assert _statuses(verdict)["receipt.hashes"] == "pass"


@pytest.mark.parametrize("which", ["ecdsa", "ed25519"])
def test_forged_text_under_a_real_signature_fails(which, ecdsa, ed25519):
    signer = ecdsa if which == "ecdsa" else ed25519
    receipt = _receipt(signer, signed_text(REQUEST, RESPONSE))
    receipt["text"] = signed_text(REQUEST, b"something else")
    assert _statuses(verify_receipt(receipt))["receipt.signature"] == "fail"


@pytest.mark.parametrize("which", ["ecdsa", "ed25519"])
def test_claimed_address_of_another_key_fails(which, ecdsa, ed25519):
    signer = ecdsa if which == "ecdsa" else ed25519
    receipt = _receipt(signer, signed_text(REQUEST, RESPONSE))
    other = (EcdsaSigner if which == "ecdsa" else Ed25519Signer).generate()
    receipt["signing_address"] = other.address
    assert _statuses(verify_receipt(receipt))["receipt.signature"] == "fail"


def test_tampered_bodies_fail_the_hashes(ecdsa):
    receipt = _receipt(ecdsa, signed_text(REQUEST, RESPONSE))
    verdict = verify_receipt(receipt, request=REQUEST + b" ", response=RESPONSE)
    hashes = verdict.check("receipt.hashes")
    assert hashes.status == "fail"
    assert "request sha256" in hashes.detail
    assert verdict.status == "failed"


@pytest.mark.parametrize(
    ("signature", "algo"),
    [
        ("0x" + "00" * 65, "ecdsa"),
        ("0x1234", "ecdsa"),
        ("zz", "ecdsa"),
        ("0x" + "11" * 64 + "1d", "ecdsa"),  # v = 29
        ("00" * 64, "ed25519"),
        ("abc", "ed25519"),
        ("00" * 64, "rsa"),
    ],
)
def test_malformed_signatures_fail_the_check_without_raising(signature, algo, ecdsa):
    text = signed_text(REQUEST, RESPONSE)
    verdict = verify_receipt(
        {
            "text": text,
            "signature": signature,
            "signing_address": ecdsa.address,
            "signing_algo": algo,
        }
    )
    assert _statuses(verdict)["receipt.signature"] == "fail"


def test_signing_algo_is_inferred_from_the_signature_shape(ecdsa, ed25519):
    text = signed_text(REQUEST, RESPONSE)
    for signer in (ecdsa, ed25519):
        receipt = _receipt(signer, text)
        del receipt["signing_algo"]
        verdict = verify_receipt(receipt)
        assert verdict.signing_algo == signer.algo
        assert _statuses(verdict)["receipt.signature"] == "pass"


def test_text_that_is_not_two_hashes_fails_the_hashes_check(ecdsa):
    verdict = verify_receipt(_receipt(ecdsa, "hello"))
    assert _statuses(verdict) == {
        "receipt.signature": "pass",
        "receipt.hashes": "fail",
        "receipt.signer": "skip",
    }


def test_missing_signing_address_fails(ecdsa):
    receipt = _receipt(ecdsa, signed_text(REQUEST, RESPONSE))
    del receipt["signing_address"]
    assert _statuses(verify_receipt(receipt))["receipt.signature"] == "fail"


@pytest.mark.parametrize(
    "sig", [[], "text", {"text": "a"}, {"signature": "0x"}, {"text": 1, "signature": "x"}]
)
def test_unusable_receipts_raise_report_format_error(sig):
    with pytest.raises(ReportFormatError):
        verify_receipt(sig)


def test_ed25519_verify_rejects_wrong_lengths():
    with pytest.raises(ValueError):
        verify_ed25519("t", "00" * 63, "00" * 32)


_text = st.text(max_size=200)
_field = st.one_of(
    st.none(),
    st.integers(),
    _text,
    st.binary(max_size=80).map(bytes.hex),
    st.binary(max_size=80).map(lambda b: "0x" + b.hex()),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["text", "signature", "signing_address", "signing_algo", "model"]), _field
    )
)
def test_fuzzed_receipts_give_a_verdict_or_a_format_error(sig):
    try:
        verdict = verify_receipt(sig)
    except ReportFormatError:
        return
    assert verdict.status in ("failed", "unverifiable")


@settings(max_examples=200, deadline=None)
@given(_text)
def test_fuzzed_signed_texts_parse_or_raise_value_error(text):
    try:
        _model, req, resp = parse_signed_text(text)
    except ValueError:
        return
    assert text.endswith(f"{req}:{resp}")


# receipt.signer: the one decision (attestation.receipt.decide_signer), as the collector and
# verify_receipt make it.

KEY = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


def _decide(records: dict, verified=(("ecdsa", KEY),)):
    from teelog.attestation.receipt import decide_signer, signer_key

    return decide_signer({signer_key(k): v for k, v in records.items()}, list(verified),
                         owner="n")


def test_a_signer_vouched_for_by_a_verified_attestation_passes_and_names_it():
    from teelog.attestation.receipt import SignerRecord

    d = _decide({KEY.upper(): SignerRecord("failed", 9, "verified", 4)})
    assert (d.check.status, d.attestation_index, d.named_index) == ("pass", 4, 9)
    assert "attestation #4" in d.check.detail


def test_a_signer_vouched_for_only_by_a_warning_attestation_warns():
    from teelog.attestation.receipt import SignerRecord

    d = _decide({KEY: SignerRecord("warning", 3, "warning", 3)})
    assert (d.check.status, d.attestation_index) == ("warn", 3)
    assert "status is warning" in d.check.detail


@pytest.mark.parametrize(("named", "want"), [("unverifiable", "skip"), ("failed", "fail")])
def test_a_signer_named_only_by_attestations_that_did_not_verify_is_never_vouched(named, want):
    from teelog.attestation.receipt import SignerRecord

    d = _decide({KEY: SignerRecord(named, 5)})
    assert (d.check.status, d.attestation_index, d.named_index) == (want, None, 5)
    assert f"#5: {named}" in d.check.detail


def test_an_unnamed_signer_or_no_verified_signature_fails():
    from teelog.attestation.receipt import SignerRecord

    unnamed = _decide({OTHER: SignerRecord("verified", 1, "verified", 1)})
    assert (unnamed.check.status, unnamed.attestation_index) == ("fail", None)
    assert "no attestation of node 'n' names ecdsa" in unnamed.check.detail
    nothing = _decide({KEY: SignerRecord("verified", 1, "verified", 1)}, verified=())
    assert (nothing.check.status, nothing.check.detail) == ("fail", "no signature verified")


def test_verify_receipt_tells_a_key_named_by_an_unverifiable_attestation_from_an_unknown_one():
    from teelog.attestation.receipt import SignerRecord, signer_key

    sig = BY_ID["C_valid"]["signature_response"]
    named = verify_receipt(
        sig, signers={signer_key(sig["signing_address"]): SignerRecord("unverifiable")}
    )
    assert _statuses(named)["receipt.signer"] == "skip"
    unknown = verify_receipt(sig, signers={})
    assert _statuses(unknown)["receipt.signer"] == "fail"
    forged = BY_ID["B_invalid_copy_paste"]["signature_response"]
    with_key = verify_receipt(forged, expected_signers={forged["signing_address"]})
    assert with_key.check("receipt.signer").detail == "no signature verified"


def test_of_two_signers_the_later_vouching_attestation_decides_even_against_index_0():
    from teelog.attestation.receipt import SignerRecord

    records = {
        KEY: SignerRecord("verified", 0, "verified", 0),
        OTHER: SignerRecord("verified", 2, "verified", 2),
    }
    d = _decide(records, verified=(("ecdsa", KEY), ("ed25519", OTHER)))
    assert d.attestation_index == 2
    d = _decide(
        {KEY: SignerRecord("unverifiable", 0), OTHER: SignerRecord("failed", None)},
        verified=(("ecdsa", OTHER), ("ed25519", KEY)),
    )
    assert (d.named_index, d.check.status) == (0, "skip")
