"""The attestation token ``/attest`` returns: a short-lived ES256 JWT (RFC 7519, RFC 7515).

Like Trustee's EAR token it is signed ES256 with the signer's public JWK in the JOSE header,
and carries ``iat``/``exp`` (research/key-release.md §1.3); the stock client reads only
``exp``/``nbf``, the broker verifies everything when the token comes back as a Bearer token.
The signing key lives in memory only: a restarted broker honours no earlier token. Verification
refuses any other ``alg`` (``none`` included), another key, a bad signature, a missing claim
and an expired token, against the broker's clock.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import KbsError

ALG = "ES256"
DEFAULT_TTL = 300.0  # seconds; Trustee's DEFAULT_TOKEN_DURATION is 5 minutes


class TokenSigner:
    """Issues and verifies the broker's tokens (one P-256 key per broker process)."""

    def __init__(
        self, issuer: str, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float]
    ) -> None:
        self.issuer = issuer
        self.ttl = ttl
        self._clock = clock
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))

    def issue(self, claims: dict[str, Any]) -> str:
        now = int(self._clock())
        payload = {
            **claims,
            "iss": self.issuer,
            "iat": now,
            "exp": now + int(self.ttl),
            "jti": secrets.token_hex(16),
        }
        return jwt.encode(payload, self._key, algorithm=ALG, headers={"jwk": self.public_jwk})

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token``; ``TokenVerifierError`` saying why it is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise KbsError("TokenVerifierError", f"token unreadable: {exc}") from exc
        if header.get("alg") != ALG:
            raise KbsError("TokenVerifierError", f"token alg {header.get('alg')!r}, not {ALG}")
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=[ALG],
                issuer=self.issuer,
                # exp is checked below against the broker's clock (testable, no leeway).
                options={"require": ["exp", "iat", "iss"], "verify_exp": False,
                         "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise KbsError("TokenVerifierError", f"token refused: {exc}") from exc
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= self._clock():
            raise KbsError("TokenVerifierError", "token expired")
        return claims
