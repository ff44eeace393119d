"""Errors of encrypted model files.

Two kinds, because callers act differently on them: :class:`ModelInputError` means the input
cannot be used at all (arguments, a key file of the wrong size, a manifest that is not a
``teelog-model/v1`` manifest); :class:`ModelIntegrityError` means the input was usable and a
check failed (a segment tag, a digest, a signature, a size, the key id). The CLI maps them to
exit status 2 and 1.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error raised by ``teelog.models``; the message says what was wrong."""


class ModelInputError(ModelError, ValueError):
    """Input that cannot be used: bad arguments, unreadable files, a malformed manifest."""


class ModelIntegrityError(ModelError):
    """The encrypted model failed a check: it was modified, truncated, swapped or mis-keyed."""


class CiphertextError(ModelIntegrityError):
    """A Tink streaming AEAD ciphertext that does not decrypt (Tink streaming AEAD spec)."""


class MalformedCiphertext(CiphertextError):
    """Bytes that are not an AES256_GCM_HKDF_1MB ciphertext at all (header, segment sizes)."""


class SegmentAuthenticationError(CiphertextError):
    """A segment whose AES-GCM tag does not verify under its derived key, index and flag."""

    def __init__(self, message: str, segment: int) -> None:
        super().__init__(message)
        self.segment = segment


class TruncatedCiphertext(CiphertextError):
    """A ciphertext that ends after a segment which is not flagged as the last one."""


class ExtendedCiphertext(CiphertextError):
    """A ciphertext that continues after the segment flagged as the last one."""


class WrongKeyError(ModelIntegrityError):
    """The key's id differs from the manifest's ``key_id``."""
