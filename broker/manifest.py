"""What the broker needs of a model version's ``manifest.json``: its digest and the key id.

The format belongs to ``models/`` (``teelog model encrypt``, issue 11 "Encrypted model
files"); once that package is merged these two functions are its, and the broker imports them.
The manifest digest (the model version's identity) is SHA-256 of the manifest's RFC 8785
canonical JSON; the key id is the check value ``HMAC-SHA256(key, "teelog-key-id/v1")``
(research/key-release.md §7.1), which identifies a key without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import rfc8785

KEY_ID_LABEL = b"teelog-key-id/v1"


def manifest_digest(manifest: Any) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of a parsed manifest."""
    return hashlib.sha256(rfc8785.dumps(manifest)).hexdigest()


def key_id(key: bytes) -> str:
    """The key's check value: HMAC-SHA256(key, ``teelog-key-id/v1``), hex."""
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()
