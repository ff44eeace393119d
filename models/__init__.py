"""Encrypted model files: Tink streaming AEAD ``AES256_GCM_HKDF_1MB`` and the signed manifest.

Imports nothing else of ours. The broker and the node use :func:`read_key_file`,
:func:`key_id`, :func:`read_manifest` and :func:`manifest_digest` (the model version's identity,
logged with every key release) and :func:`decrypt_model`.
"""

from __future__ import annotations

from .binding import FORMAT, MANIFEST_NAME, associated_data
from .encrypted_model import (
    ModelCheck,
    VerifyReport,
    decrypt_model,
    encrypt_model,
    read_manifest,
    source_files,
    verify_model,
)
from .errors import (
    CiphertextError,
    ExtendedCiphertext,
    MalformedCiphertext,
    ModelError,
    ModelInputError,
    ModelIntegrityError,
    SegmentAuthenticationError,
    TruncatedCiphertext,
    WrongKeyError,
)
from .keys import (
    generate_key,
    key_id,
    read_key_file,
    read_owner_signing_key,
    read_owner_verify_key,
    write_key_file,
)
from .manifest import Manifest, ManifestFile, manifest_digest, new_manifest, parse_manifest

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "CiphertextError",
    "ExtendedCiphertext",
    "MalformedCiphertext",
    "Manifest",
    "ManifestFile",
    "ModelCheck",
    "ModelError",
    "ModelInputError",
    "ModelIntegrityError",
    "SegmentAuthenticationError",
    "TruncatedCiphertext",
    "VerifyReport",
    "WrongKeyError",
    "associated_data",
    "decrypt_model",
    "encrypt_model",
    "generate_key",
    "key_id",
    "manifest_digest",
    "new_manifest",
    "parse_manifest",
    "read_key_file",
    "read_manifest",
    "read_owner_signing_key",
    "read_owner_verify_key",
    "source_files",
    "verify_model",
    "write_key_file",
]
