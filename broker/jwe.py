"""The resource response: a flattened JWE (RFC 7516 §7.2.2) of the key to the tee-pubkey.

``alg`` is ``ECDH-ES+A256KW`` (EC keys) or ``RSA-OAEP-256`` (RSA keys), ``enc`` ``A256GCM``,
built with jwcrypto. Trustee's client reads ``epk`` from the *protected* header only and
recomputes the AAD by re-serialising the parsed header (``alg``, ``enc``, then the other
members, in input order or sorted, compact separators) (guest-components ``keypair.rs``,
kbs-types ``ProtectedHeader::generate_aad``; research/key-release.md §1.4). jwcrypto's flattened
form puts ``epk`` in the unprotected header, so the response is split out of a *compact* JWE,
whose protected header is exactly ``{"alg":…,"enc":…,"epk":{"crv","kty","x","y"}}``: the same
bytes under either re-serialisation. ``aad`` is omitted, as Trustee omits it.
"""

from __future__ import annotations

import json

from jwcrypto import jwe

from .tee_key import TeeKey

ENC = "A256GCM"
_PARTS = ("protected", "encrypted_key", "iv", "ciphertext", "tag")


def wrap_secret(secret: bytes, key: TeeKey) -> dict[str, str]:
    """The flattened JWE of ``secret`` to ``key`` (``{"protected", "encrypted_key", "iv",
    "ciphertext", "tag"}``)."""
    header = json.dumps({"alg": key.alg, "enc": ENC}, separators=(",", ":"))
    token = jwe.JWE(secret, protected=header)
    token.add_recipient(key.key)
    parts = token.serialize(compact=True).split(".")
    return dict(zip(_PARTS, parts, strict=True))


def compact_of(flattened: dict[str, str]) -> str:
    """The compact serialisation of a flattened response without ``aad`` (how a client
    decrypts it with jwcrypto or joserfc)."""
    return ".".join(flattened[p] for p in _PARTS)
