"""Stored NRAS responses: parsing real ones, and token checks with a JWKS.

No JWKS snapshot matching the real tokens' kids is in the fixtures, so real tokens can only be
shown to *fail* (unknown key); passing cases re-sign the real claims with a key made here and a
JWKS holding it — a local fake of NVIDIA's service, never presented as NVIDIA's verdict.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from gpu_helpers import DATA, NEAR_NONCE, NVAT, near_payload_text, statuses
from teelog.attestation.gpu import verify_gpu_evidence
from teelog.attestation.gpu.nras import (
    NrasError,
    load_jwks,
    parse_detached_eat,
    verify_nras_response,
)

REPORTS = DATA / "reports"
KID = "test-kid-1"


def _real(name: str):
    return json.loads((REPORTS / name).read_text())


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _jwks(key: ec.EllipticCurvePrivateKey, kid: str = KID) -> dict:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "alg": "ES384"}]}


def _resign(
    response: list,
    key: ec.EllipticCurvePrivateKey,
    *,
    kid: str = KID,
    overall: dict | None = None,
    devices: dict | None = None,
) -> list:
    """The response's claims signed with ``key``; submods digests recomputed."""
    device_tokens = {}
    for name, token in response[1].items():
        claims = {**_claims(token), **((devices or {}).get(name, {}))}
        device_tokens[name] = jwt.encode(claims, key, "ES384", headers={"kid": kid})
    claims = _claims(response[0][1])
    claims["submods"] = {
        name: ["DIGEST", ["SHA-256", hashlib.sha256(t.encode()).hexdigest()]]
        for name, t in device_tokens.items()
    }
    claims.update(overall or {})
    return [["JWT", jwt.encode(claims, key, "ES384", headers={"kid": kid})], device_tokens]


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


EIGHT = _real("vllmproxy_nras_response_8gpu_ppcie.json")
EIGHT_AT = datetime.fromtimestamp(_claims(EIGHT[0][1])["nbf"] + 60, UTC)
EIGHT_NONCE = bytes.fromhex(_claims(EIGHT[0][1])["eat_nonce"])


@pytest.mark.parametrize(
    ("name", "devices"),
    [
        ("vllmproxy_nras_response_1gpu.json", 1),
        ("vllmproxy_nras_response_8gpu_ppcie.json", 8),
        ("dstack_nvattest_gpu_attestation_h100.json", 1),
    ],
)
def test_real_responses_parse(name, devices):
    eat = parse_detached_eat((REPORTS / name).read_text())
    assert len(eat.devices) == devices


def test_nvidia_claims_v3_sample_parses():
    eat = parse_detached_eat((NVAT / "hopperClaimsv3_detached_eat.json").read_text())
    assert list(eat.devices) == ["GPU-0"]


def test_real_token_fails_with_a_jwks_that_lacks_its_key(key):
    outcome = verify_nras_response(EIGHT, _jwks(key), at=EIGHT_AT)
    assert not outcome.ok
    assert "is not in the JWKS" in outcome.detail


def test_real_token_fails_under_another_key_with_its_kid(key):
    kid = jwt.get_unverified_header(EIGHT[0][1])["kid"]
    outcome = verify_nras_response(EIGHT, _jwks(key, kid), at=EIGHT_AT)
    assert not outcome.ok
    assert "signature invalid" in outcome.detail


def test_local_nvattest_token_with_alg_none_is_unauthenticated(key):
    doc = _real("dstack_nvattest_gpu_attestation_h100.json")
    outcome = verify_nras_response(doc, _jwks(key), at=EIGHT_AT)
    assert not outcome.ok
    assert "not ES384" in outcome.detail


def test_resigned_response_passes_with_its_jwks(key):
    response = _resign(EIGHT, key)
    outcome = verify_nras_response(
        response, _jwks(key), at=EIGHT_AT, expected_nonce=EIGHT_NONCE, gpu_count=8
    )
    assert outcome.ok, outcome.detail
    assert outcome.claims["x-nvidia-overall-att-result"] is True
    assert len(outcome.device_claims) == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"at": datetime(2030, 1, 1, tzinfo=UTC)}, "not at 2030"),
        ({"expected_nonce": b"\x00" * 32}, "not the expected nonce"),
        ({"gpu_count": 4}, "the evidence has 4"),
    ],
    ids=["expired", "wrong-nonce", "gpu-count"],
)
def test_resigned_response_fails_on_time_nonce_and_count(key, change, message):
    kwargs = {"at": EIGHT_AT, "expected_nonce": EIGHT_NONCE, "gpu_count": 8, **change}
    outcome = verify_nras_response(_resign(EIGHT, key), _jwks(key), **kwargs)
    assert not outcome.ok
    assert message in outcome.detail


def test_overall_result_false_fails(key):
    response = _resign(
        EIGHT,
        key,
        overall={"x-nvidia-overall-att-result": False},
        devices={"GPU-3": {"measres": "fail"}},
    )
    outcome = verify_nras_response(response, _jwks(key), at=EIGHT_AT)
    assert not outcome.ok
    assert "GPU-3" in outcome.detail


def test_wrong_issuer_fails(key):
    response = _resign(EIGHT, key, overall={"iss": "https://example.org"})
    assert "issuer" in verify_nras_response(response, _jwks(key), at=EIGHT_AT).detail


def test_swapped_device_token_breaks_the_submods_digest(key):
    response = _resign(EIGHT, key)
    response[1]["GPU-0"], response[1]["GPU-1"] = response[1]["GPU-1"], response[1]["GPU-0"]
    outcome = verify_nras_response(response, _jwks(key), at=EIGHT_AT)
    assert not outcome.ok
    assert "submods digest" in outcome.detail


NEAR_AT = datetime(2026, 4, 15, tzinfo=UTC)
WINDOW = {"nbf": int(NEAR_AT.timestamp()) - 10, "exp": int(NEAR_AT.timestamp()) + 3600}


def _near_response(key, *, ueids: bool = True) -> list:
    """The 8-GPU claims re-signed for the NEAR capture: its nonce, time, and (optionally) GPUs."""
    devices = verify_gpu_evidence(near_payload_text(), expected_nonce=None, at=NEAR_AT).devices
    overrides = {
        f"GPU-{d.index}": {
            **WINDOW,
            "eat_nonce": NEAR_NONCE.hex(),
            **({"ueid": d.ueid} if ueids else {}),
        }
        for d in devices
    }
    return _resign(EIGHT, key, overall={**WINDOW, "eat_nonce": NEAR_NONCE.hex()}, devices=overrides)


def test_gpu_nras_passes_for_a_token_about_these_gpus(key):
    text = near_payload_text()
    ok = verify_gpu_evidence(
        text, expected_nonce=NEAR_NONCE, at=NEAR_AT, nras=_near_response(key), jwks=_jwks(key)
    )
    assert statuses(ok)["gpu.nras"] == "pass"
    assert ok.status == "verified"


def test_gpu_nras_fails_for_a_token_about_other_gpus_with_the_same_nonce(key):
    result = verify_gpu_evidence(
        near_payload_text(),
        expected_nonce=NEAR_NONCE,
        at=NEAR_AT,
        nras=_near_response(key, ueids=False),
        jwks=_jwks(key),
    )
    check = next(c for c in result.checks if c.name == "gpu.nras")
    assert check.status == "fail"
    assert "about other GPUs" in check.detail


def test_gpu_nras_without_jwks_is_a_non_required_skip_and_real_tokens_fail(key):
    text = near_payload_text()
    no_jwks = verify_gpu_evidence(
        text, expected_nonce=NEAR_NONCE, at=NEAR_AT, nras=_near_response(key)
    )
    check = next(c for c in no_jwks.checks if c.name == "gpu.nras")
    assert (check.status, check.required) == ("skip", False)
    wrong = verify_gpu_evidence(
        text, expected_nonce=NEAR_NONCE, at=NEAR_AT, nras=EIGHT, jwks=_jwks(key)
    )
    assert statuses(wrong)["gpu.nras"] == "fail"
    assert wrong.status == "failed"


def test_device_token_with_another_nonce_fails(key):
    response = _resign(EIGHT, key, devices={"GPU-2": {"eat_nonce": "00" * 32}})
    outcome = verify_nras_response(response, _jwks(key), at=EIGHT_AT)
    assert "GPU-2 carry another eat_nonce" in outcome.detail


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "not valid JSON"),
        ({}, "must be a list"),
        ([["JWS", "x"]], "must start with"),
        ([["JWT", "x"], []], "must be an object"),
        ([["JWT", "x"], {"GPU-0": 1}], "is not a string"),
    ],
)
def test_malformed_responses_raise_nras_error(doc, message):
    with pytest.raises(NrasError, match=message):
        parse_detached_eat(doc)


@pytest.mark.parametrize(
    "jwks", ["[]", {"keys": [{"kty": "EC"}]}, {"keys": [{"kid": "a", "kty": "EC", "crv": "P-384"}]}]
)
def test_malformed_jwks_raise_nras_error(jwks):
    with pytest.raises(NrasError):
        load_jwks(jwks)
