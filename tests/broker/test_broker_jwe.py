"""The JWE response (research/key-release.md §1.4) and the tee-pubkey checks (§8.3 case 9)."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from jwcrypto import jwe, jwk
from teelog.broker.errors import KbsError
from teelog.broker.jwe import compact_of, wrap_secret
from teelog.broker.tee_key import parse_tee_key


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ec_pair(crv: str = "P-256"):
    private = jwk.JWK.generate(kty="EC", crv=crv)
    return private, {**json.loads(private.export_public()), "alg": "ECDH-ES+A256KW"}


def test_ecdh_es_header_is_alg_enc_epk_and_reserialises_to_the_same_bytes_both_ways():
    _, public = _ec_pair()
    flat = wrap_secret(os.urandom(32), parse_tee_key(public))
    header_bytes = _b64d(flat["protected"])
    header = json.loads(header_bytes)
    assert list(header) == ["alg", "enc", "epk"]
    assert header["alg"] == "ECDH-ES+A256KW" and header["enc"] == "A256GCM"
    assert set(header["epk"]) == {"crv", "kty", "x", "y"}
    # Trustee's client: alg, enc, then the rest in input order (serde preserve_order) or
    # sorted (BTreeMap), compact separators.
    in_order = json.dumps(header, separators=(",", ":")).encode()
    rest = {k: v for k, v in header.items() if k not in ("alg", "enc")}
    sorted_rest = {"alg": header["alg"], "enc": header["enc"],
                   **{k: dict(sorted(v.items())) if isinstance(v, dict) else v
                      for k, v in sorted(rest.items())}}
    assert in_order == header_bytes
    assert json.dumps(sorted_rest, separators=(",", ":")).encode() == header_bytes
    assert "aad" not in flat and "header" not in flat


def test_jwcrypto_decrypts_the_ec_response():
    private, public = _ec_pair()
    secret = os.urandom(32)
    token = jwe.JWE()
    token.deserialize(compact_of(wrap_secret(secret, parse_tee_key(public))), key=private)
    assert token.payload == secret


def test_p521_and_rsa_oaep_256_responses_decrypt():
    secret = os.urandom(32)
    p521, public = _ec_pair("P-521")
    rsa = jwk.JWK.generate(kty="RSA", size=2048)
    rsa_public = {**json.loads(rsa.export_public()), "alg": "RSA-OAEP-256"}
    for private, pub in ((p521, public), (rsa, rsa_public)):
        token = jwe.JWE()
        token.deserialize(compact_of(wrap_secret(secret, parse_tee_key(pub))), key=private)
        assert token.payload == secret


def test_a_response_for_another_key_does_not_decrypt():
    _, public = _ec_pair()
    other, _ = _ec_pair()
    token = jwe.JWE()
    with pytest.raises(jwe.InvalidJWEData):
        token.deserialize(compact_of(wrap_secret(b"k" * 32, parse_tee_key(public))), key=other)


def test_thumbprint_is_rfc7638():
    _, public = _ec_pair()
    members = {k: public[k] for k in ("crv", "kty", "x", "y")}
    text = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(text).digest()).decode().rstrip("=")
    assert parse_tee_key(public).thumbprint == expected


def _refused(doc) -> str:
    with pytest.raises(KbsError) as info:
        parse_tee_key(doc)
    return info.value.detail


def test_weak_or_malformed_keys_are_refused():
    _, ec = _ec_pair()
    rsa_small = {**json.loads(jwk.JWK.generate(kty="RSA", size=1024).export_public()),
                 "alg": "RSA-OAEP-256"}
    rsa = {**json.loads(jwk.JWK.generate(kty="RSA", size=2048).export_public())}
    assert "RSA1_5" in _refused({**rsa, "alg": "RSA1_5"})
    assert "1024 bits" in _refused(rsa_small)
    assert "32 bytes" in _refused({**ec, "x": ec["x"][:-4]})
    assert "not a valid EC key" in _refused({**ec, "y": ec["x"]})  # off the curve
    assert "P-384" in _refused({**ec, "crv": "P-384"})
    assert "oct" in _refused({"kty": "oct", "k": "AAAA"})
    assert "A128KW" in _refused({**ec, "alg": "A128KW"})
