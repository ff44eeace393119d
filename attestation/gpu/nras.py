"""Stored NVIDIA Remote Attestation Service (NRAS) responses: detached EAT, checked offline.

NRAS answers ``POST /v3/attest/gpu`` with a detached Entity Attestation Token (IETF RATS EAT,
draft-ietf-rats-eat §4.2.18 "submods"): ``[["JWT", <overall JWT>], {"GPU-0": <JWT>, ...}]``
(docs/attestation.md "What gpu.* checks prove", ``gpu.nras``). Every JWT is ES384 under a key
of NVIDIA's JWKS (``/.well-known/jwks.json``, rotated daily), so a stored token is
re-verifiable only with the JWKS snapshot captured with it. The overall token's ``submods``
carry ``SHA-256`` digests of each device JWT's text.

Also accepted: NVIDIA ``nvattest`` output ``{"claims", "detached_eat", ...}`` (dstack
``GpuInfo``), whose local tokens are ``alg: none`` — unauthenticated, so they fail here.

The JWKS's own ``x5c`` chain ends at "NVIDIA Attestation Service CA 001", which we do not
have pinned: trusting the JWKS snapshot is the caller's decision, and the check says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt

from ..times import rfc3339
from .errors import NrasError

NRAS_ISSUER = "https://nras.attestation.nvidia.com"
ALGORITHM = "ES384"


@dataclass(frozen=True)
class DetachedEat:
    """An NRAS response: the overall JWT and the per-device JWTs by submodule name."""

    overall: str
    devices: dict[str, str]


@dataclass
class NrasOutcome:
    """Result of checking a stored NRAS response: ``ok``, why, and the verified claims."""

    ok: bool
    detail: str
    claims: dict[str, Any] = field(default_factory=dict)
    device_claims: dict[str, dict[str, Any]] = field(default_factory=dict)


def _load(doc: Any, what: str) -> Any:
    if isinstance(doc, str | bytes | bytearray):
        try:
            return json.loads(doc)
        except (ValueError, RecursionError):
            raise NrasError(f"{what} is not valid JSON") from None
    return doc


def parse_detached_eat(doc: Any) -> DetachedEat:
    """Parse an NRAS response (list form, or an ``nvattest`` object with ``detached_eat``)."""
    doc = _load(doc, "NRAS response")
    if isinstance(doc, dict) and "detached_eat" in doc:
        doc = _load(doc["detached_eat"], "detached_eat")
    if not isinstance(doc, list) or not doc:
        raise NrasError('NRAS response must be a list [["JWT", token], {device: token}]')
    head = doc[0]
    if not (
        isinstance(head, list) and len(head) == 2 and head[0] == "JWT" and isinstance(head[1], str)
    ):
        raise NrasError('NRAS response must start with ["JWT", <token>]')
    devices: dict[str, str] = {}
    if len(doc) > 1:
        if not isinstance(doc[1], dict):
            raise NrasError("NRAS device tokens must be an object {name: token}")
        for name, token in doc[1].items():
            if not isinstance(token, str):
                raise NrasError(f"NRAS token for {name!r} is not a string")
            devices[str(name)] = token
    return DetachedEat(head[1], devices)


def load_jwks(jwks: Any) -> dict[str, jwt.PyJWK]:
    """Parse a JWKS (JSON text or object) into keys by ``kid``; :class:`NrasError` if malformed."""
    doc = _load(jwks, "JWKS")
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise NrasError('JWKS must be an object {"keys": [...]}')
    out: dict[str, jwt.PyJWK] = {}
    for n, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            raise NrasError(f"JWKS key {n} has no kid")
        try:
            out[key["kid"]] = jwt.PyJWK(key, ALGORITHM)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise NrasError(f"JWKS key {key['kid']!r} is not an ES384 key: {exc}") from None
    return out


def _verify_token(
    token: str, keys: dict[str, jwt.PyJWK], at: datetime, what: str
) -> dict[str, Any]:
    """Signature (ES384, kid from the JWKS), issuer and time window of one JWT; raise NrasError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise NrasError(f"{what}: not a JWT: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise NrasError(f"{what}: algorithm {header.get('alg')!r} is not ES384 (unauthenticated)")
    kid = header.get("kid")
    if kid not in keys:
        raise NrasError(f"{what}: signing key {kid!r} is not in the JWKS")
    try:
        claims = jwt.decode(
            token,
            keys[kid],
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise NrasError(f"{what}: signature invalid: {exc}") from None
    if claims.get("iss") != NRAS_ISSUER:
        raise NrasError(f"{what}: issuer {claims.get('iss')!r} is not {NRAS_ISSUER}")
    now = at.timestamp()
    nbf, exp = claims.get("nbf", claims.get("iat")), claims.get("exp")
    if not isinstance(nbf, int | float) or not isinstance(exp, int | float):
        raise NrasError(f"{what}: no nbf/exp")
    if not nbf <= now <= exp:
        raise NrasError(
            f"{what}: valid {rfc3339(nbf)} .. "
            f"{rfc3339(exp)}, not at {rfc3339(at)}"
        )
    return claims


def verify_nras_response(
    response: Any,
    jwks: Any,
    *,
    at: datetime,
    expected_nonce: bytes | None = None,
    gpu_count: int | None = None,
    ueids: set[str] | None = None,
) -> NrasOutcome:
    """Check a stored NRAS response with a JWKS snapshot, as of ``at``.

    Passes only when every token verifies (ES384, kid in the JWKS, NRAS issuer, ``at`` within
    nbf..exp), every ``submods`` digest matches its device token, every device token carries
    the overall ``eat_nonce``, the device count is ``gpu_count`` (when given), the devices'
    ``ueid`` claims are exactly ``ueids`` (when given: the decimal leaf serials of the evidence,
    so that the verdict is about these GPUs), ``eat_nonce`` is ``expected_nonce`` (when given),
    and NVIDIA's overall result ``x-nvidia-overall-att-result`` is true.
    """
    try:
        eat = parse_detached_eat(response)
        keys = load_jwks(jwks)
        claims = _verify_token(eat.overall, keys, at, "overall token")
        device_claims = {
            name: _verify_token(token, keys, at, f"{name} token")
            for name, token in sorted(eat.devices.items())
        }
    except NrasError as exc:
        return NrasOutcome(False, str(exc))
    outcome = NrasOutcome(False, "", claims, device_claims)
    submods = claims.get("submods")
    if not isinstance(submods, dict) or set(submods) != set(eat.devices):
        outcome.detail = (
            f"submods {sorted(submods or {})} do not match device tokens {sorted(eat.devices)}"
        )
        return outcome
    for name, token in eat.devices.items():
        entry = submods[name]
        digest = hashlib.sha256(token.encode()).hexdigest()
        if entry != ["DIGEST", ["SHA-256", digest]]:
            outcome.detail = f"submods digest of {name} does not match its token"
            return outcome
    stray = sorted(
        n for n, c in device_claims.items() if c.get("eat_nonce") != claims.get("eat_nonce")
    )
    if stray:
        outcome.detail = f"device token(s) {', '.join(stray)} carry another eat_nonce"
        return outcome
    if gpu_count is not None and len(eat.devices) != gpu_count:
        outcome.detail = f"NRAS attested {len(eat.devices)} GPU(s), the evidence has {gpu_count}"
        return outcome
    attested = {str(c.get("ueid")) for c in device_claims.values()}
    if ueids is not None and attested != ueids:
        outcome.detail = (
            f"{len(attested - ueids)} NRAS device(s) are not GPUs of this evidence and "
            f"{len(ueids - attested)} GPU(s) have no NRAS token (ueid = leaf serial): "
            "the token is about other GPUs"
        )
        return outcome
    if (
        expected_nonce is not None
        and str(claims.get("eat_nonce", "")).lower() != expected_nonce.hex()
    ):
        got = claims.get("eat_nonce")
        outcome.detail = f"eat_nonce {got!r} is not the expected nonce {expected_nonce.hex()}"
        return outcome
    if claims.get("x-nvidia-overall-att-result") is not True:
        failed = sorted(n for n, c in device_claims.items() if c.get("measres") != "success")
        outcome.detail = f"NVIDIA's overall result is false (failed: {', '.join(failed) or '?'})"
        return outcome
    outcome.ok = True
    header = jwt.get_unverified_header(eat.overall)
    outcome.detail = (
        f"NRAS token for {len(eat.devices)} GPU(s) verified with JWKS key {header.get('kid')}; "
        f"overall result true, claims version {claims.get('x-nvidia-ver')} "
        "(JWKS taken as given: its x5c root is not pinned)"
    )
    return outcome
