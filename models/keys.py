"""Key material of an encrypted model: the model key file, its key id, the owner's Ed25519 keys.

* The model key (Tink ``AES256_GCM_HKDF_1MB`` main key) is 32 random bytes; its file holds
  exactly those bytes and is created with mode 0600, never over an existing file.
* The key id is a check value, HMAC-SHA256(key, ``"teelog-key-id/v1"``) in lowercase hex: it
  names the key in manifests and log entries and reveals nothing from which the key follows.
* The owner's signing key is an unencrypted PKCS#8 PEM Ed25519 private key (RFC 8410, as
  ``openssl genpkey -algorithm ed25519`` writes it); the verifying key is the matching
  SubjectPublicKeyInfo PEM (``openssl pkey -pubout``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ModelInputError
from .streaming_aead import KEY_SIZE

KEY_ID_LABEL = b"teelog-key-id/v1"


def generate_key() -> bytes:
    """A fresh model key from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_SIZE)


def key_id(key: bytes) -> str:
    """The key's check value: HMAC-SHA256(key, "teelog-key-id/v1"), 64 lowercase hex digits."""
    if len(key) != KEY_SIZE:
        raise ModelInputError(f"a model key is {KEY_SIZE} bytes, not {len(key)}")
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()


def read_key_file(path: Path) -> bytes:
    """Read a model key file: exactly 32 bytes."""
    try:
        key = path.read_bytes()
    except OSError as e:
        raise ModelInputError(f"cannot read key file {path}: {e.strerror}") from None
    if len(key) != KEY_SIZE:
        raise ModelInputError(
            f"key file {path} holds {len(key)} bytes; a model key file is exactly {KEY_SIZE} "
            "raw bytes"
        )
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Create ``path`` with mode 0600 holding ``key``; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ModelInputError(
            f"key file {path} already exists; refusing to overwrite a key"
        ) from None
    except OSError as e:
        raise ModelInputError(f"cannot create key file {path}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have narrowed it further, never widened; be exact
        view = memoryview(key)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_owner_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the owner's Ed25519 private key (PKCS#8 PEM, unencrypted)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelInputError(f"cannot read owner key {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ModelInputError(
            f"owner key {path} is not an unencrypted PKCS#8 PEM private key: {e}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelInputError(f"owner key {path} is not an Ed25519 key")
    return key


def read_owner_verify_key(path: Path) -> Ed25519PublicKey:
    """Load the owner's Ed25519 public key (SubjectPublicKeyInfo PEM)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelInputError(f"cannot read owner verifying key {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ModelInputError(f"owner verifying key {path} is not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ModelInputError(f"owner verifying key {path} is not an Ed25519 key")
    return key
