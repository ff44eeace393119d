"""The ES256 attestation token: issued, verified, and refused when forged or expired."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from broker_helpers import Clock
from teelog.broker.errors import KbsError
from teelog.broker.token import TokenSigner


def _refusal(signer: TokenSigner, token: str) -> str:
    with pytest.raises(KbsError) as info:
        signer.verify(token)
    assert info.value.name == "TokenVerifierError" and info.value.status_code == 401
    return info.value.detail


def test_a_token_verifies_until_it_expires():
    clock = Clock(1_000_000.0)
    signer = TokenSigner("teelog-broker/b", ttl=60, clock=clock)
    token = signer.issue({"tee": "sample"})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["jwk"] == signer.public_jwk
    claims = signer.verify(token)
    assert claims["tee"] == "sample" and claims["exp"] == 1_000_060
    clock.now += 60
    assert "expired" in _refusal(signer, token)


def test_a_token_of_another_key_is_refused():
    clock = Clock(1_000_000.0)
    signer, forger = (TokenSigner("teelog-broker/b", clock=clock) for _ in range(2))
    assert "refused" in _refusal(signer, forger.issue({"tee": "tdx"}))


def test_alg_none_and_hs256_are_refused():
    clock = Clock(1_000_000.0)
    signer = TokenSigner("teelog-broker/b", clock=clock)
    payload = {"iss": signer.issuer, "iat": 1_000_000, "exp": 2_000_000, "tee": "tdx"}
    none = jwt.encode(payload, None, algorithm="none")
    assert "'none'" in _refusal(signer, none)
    hs = jwt.encode(payload, "s" * 32, algorithm="HS256")
    assert "HS256" in _refusal(signer, hs)


def test_an_edited_payload_is_refused():
    clock = Clock(1_000_000.0)
    signer = TokenSigner("teelog-broker/b", clock=clock)
    head, body, sig = signer.issue({"claims": {"tee": "sample"}}).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["claims"]["tee"] = "tdx"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert "refused" in _refusal(signer, f"{head}.{edited}.{sig}")


def test_a_token_of_another_issuer_is_refused():
    clock = Clock(1_000_000.0)
    signer = TokenSigner("teelog-broker/a", clock=clock)
    other = TokenSigner("teelog-broker/b", clock=clock)
    other._key = signer._key  # same key, another broker name
    assert "refused" in _refusal(signer, other.issue({}))
