"""The TEE's public key (``runtime-data.tee-pubkey``, a JWK): which keys the broker wraps to.

Accepted, as Trustee's JWE module and kbs-types allow (research/key-release.md §1.4, §8.3 case
9): ``EC`` on ``P-256`` or ``P-521`` with ``alg`` ``ECDH-ES+A256KW`` (coordinates of exactly the
curve's length, the point on the curve), and ``RSA`` with ``alg`` ``RSA-OAEP-256`` and a modulus
of at least 2048 bits. ``RSA1_5``, other curves and unknown ``kty``/``alg`` are refused. The
identity logged is the RFC 7638 thumbprint (SHA-256, base64url).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk

from .errors import KbsError

EC_CURVES = {"P-256": 32, "P-521": 66}  # coordinate length in bytes (RFC 7518 §6.2.1.2)
_CURVES = {"P-256": ec.SECP256R1, "P-521": ec.SECP521R1}
EC_ALG = "ECDH-ES+A256KW"
RSA_ALG = "RSA-OAEP-256"
MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class TeeKey:
    """A checked TEE public key: its public members (with ``alg``), jwcrypto form, alg and
    thumbprint. The binding hashes the JWK *as sent*; tokens carry only :attr:`public`."""

    public: dict[str, Any]
    key: jwk.JWK
    alg: str
    thumbprint: str


def _b64url(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise KbsError("AttestationError", f"tee-pubkey.{what} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KbsError("AttestationError", f"tee-pubkey.{what} is not base64url") from exc


def parse_tee_key(doc: dict[str, Any]) -> TeeKey:
    """Check ``doc`` (a JWK) against the accepted key types; ``AttestationError`` says why not."""
    kty, alg = doc.get("kty"), doc.get("alg")
    if kty == "EC":
        crv = doc.get("crv")
        if crv not in EC_CURVES:
            raise KbsError("AttestationError", f"tee-pubkey: EC curve {crv!r} not accepted "
                           f"(P-256 or P-521)")
        if alg not in (None, EC_ALG):
            raise KbsError("AttestationError", f"tee-pubkey: alg {alg!r} not accepted for EC "
                           f"(expected {EC_ALG})")
        for coord in ("x", "y"):
            if len(_b64url(doc.get(coord), coord)) != EC_CURVES[crv]:
                raise KbsError("AttestationError", f"tee-pubkey.{coord} is not "
                               f"{EC_CURVES[crv]} bytes for {crv}")
        x, y = (int.from_bytes(_b64url(doc[c], c), "big") for c in ("x", "y"))
        try:  # cryptography refuses a point that is not on the curve
            ec.EllipticCurvePublicNumbers(x, y, _CURVES[crv]()).public_key()
        except ValueError as exc:
            raise KbsError("AttestationError", f"tee-pubkey is not a valid EC key: {exc}"
                           ) from exc
        fields = {"kty": "EC", "crv": crv, "x": doc["x"], "y": doc["y"]}
        chosen = EC_ALG
    elif kty == "RSA":
        if alg != RSA_ALG:
            raise KbsError("AttestationError", f"tee-pubkey: alg {alg!r} not accepted for RSA "
                           f"(expected {RSA_ALG}; RSA1_5 is refused)")
        bits = int.from_bytes(_b64url(doc.get("n"), "n"), "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise KbsError("AttestationError", f"tee-pubkey: RSA modulus of {bits} bits, "
                           f"at least {MIN_RSA_BITS} required")
        _b64url(doc.get("e"), "e")
        fields = {"kty": "RSA", "n": doc["n"], "e": doc["e"]}
        chosen = RSA_ALG
    else:
        raise KbsError("AttestationError", f"tee-pubkey: kty {kty!r} not accepted (EC or RSA)")
    try:
        key = jwk.JWK(**fields)
    except Exception as exc:  # jwcrypto's InvalidJWKValue and ValueError
        raise KbsError("AttestationError", f"tee-pubkey is not a valid {kty} key: {exc}") from exc
    return TeeKey(public={**fields, "alg": chosen}, key=key, alg=chosen,
                  thumbprint=key.thumbprint())
