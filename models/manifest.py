"""``manifest.json`` of an encrypted model version (``teelog-model/v1``), its digest and signature.

The manifest lists what the model owner encrypted::

    {
      "format": "teelog-model/v1",
      "encryption": "AES256_GCM_HKDF_1MB",
      "model": "<name>", "version": "<version>",
      "key_id": "<64 hex: HMAC-SHA256(key, 'teelog-key-id/v1')>",
      "files": [{"path": "<relative POSIX path>", "plaintext_size": <int>,
                 "ciphertext_sha256": "<64 hex>"}, …],          # sorted by path, unique
      "signature": {"alg": "Ed25519", "public_key": "<base64>", "sig": "<base64>"}  # optional
    }

The *unsigned manifest* is that object without ``"signature"``. Its canonical bytes are its
RFC 8785 (JSON Canonicalization Scheme) serialisation; the **manifest digest**, SHA-256 of those
bytes in lowercase hex, is the model version's identity (the broker logs it with every release).
The owner's signature is Ed25519 (RFC 8032) over the same canonical bytes, so it covers exactly
what the digest names, and signing never changes the digest. Base64 is RFC 4648 §4 with padding.

The file is untrusted input: parsing is strict (no duplicate or unknown members, exact types,
sorted unique paths that pass :func:`teelog.models.binding.check_relative_path`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, replace
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .binding import FORMAT, check_name, check_relative_path
from .errors import ModelInputError, ModelIntegrityError
from .streaming_aead import ciphertext_size

ENCRYPTION = "AES256_GCM_HKDF_1MB"
SIGNATURE_ALG = "Ed25519"
MAX_MANIFEST_BYTES = 16 << 20  # a generous bound for an untrusted file read into memory
_MAX_SIZE = (1 << 53) - 1  # JSON integers beyond this are not exact in I-JSON (RFC 7493 §2.2)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOP = ("format", "encryption", "model", "version", "key_id", "files")
_FILE = ("path", "plaintext_size", "ciphertext_sha256")
_SIG = ("alg", "public_key", "sig")


@dataclass(frozen=True)
class ManifestFile:
    """One encrypted file: where it lives, how long its plaintext is, its ciphertext's SHA-256."""

    path: str
    plaintext_size: int
    ciphertext_sha256: str

    @property
    def ciphertext_size(self) -> int:
        """Length the ciphertext must have (Tink AES256_GCM_HKDF_1MB segmenting)."""
        return ciphertext_size(self.plaintext_size)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "plaintext_size": self.plaintext_size,
            "ciphertext_sha256": self.ciphertext_sha256,
        }


@dataclass(frozen=True)
class ManifestSignature:
    """The owner's Ed25519 signature over the unsigned manifest's canonical bytes."""

    public_key: bytes  # 32 bytes, RFC 8032 §5.1.5 encoding
    sig: bytes  # 64 bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": SIGNATURE_ALG,
            "public_key": base64.b64encode(self.public_key).decode(),
            "sig": base64.b64encode(self.sig).decode(),
        }


@dataclass(frozen=True)
class Manifest:
    """A parsed ``manifest.json``; ``files`` are sorted by path."""

    model: str
    version: str
    key_id: str
    files: tuple[ManifestFile, ...]
    signature: ManifestSignature | None = None

    def unsigned_json(self) -> dict[str, Any]:
        """The unsigned manifest as a JSON object."""
        return {
            "format": FORMAT,
            "encryption": ENCRYPTION,
            "model": self.model,
            "version": self.version,
            "key_id": self.key_id,
            "files": [f.to_json() for f in self.files],
        }

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the unsigned manifest: what is hashed and signed."""
        return rfc8785.dumps(self.unsigned_json())

    def to_json(self) -> dict[str, Any]:
        doc = self.unsigned_json()
        if self.signature is not None:
            doc["signature"] = self.signature.to_json()
        return doc

    def dumps(self) -> bytes:
        """The bytes of ``manifest.json``: indented for people, not canonical."""
        return (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    def signed(self, owner_key: Ed25519PrivateKey) -> Manifest:
        """This manifest with the owner's signature over :meth:`canonical_bytes`."""
        public = owner_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return replace(
            self, signature=ManifestSignature(public, owner_key.sign(self.canonical_bytes()))
        )

    def verify_signature(self, owner_vkey: Ed25519PublicKey) -> None:
        """Raise :class:`ModelIntegrityError` unless the owner ``owner_vkey`` signed this."""
        if self.signature is None:
            raise ModelIntegrityError("the manifest is not signed, but an owner key was given")
        expected = owner_vkey.public_bytes(Encoding.Raw, PublicFormat.Raw)
        if self.signature.public_key != expected:
            raise ModelIntegrityError(
                "the manifest is signed by another key than the owner's "
                f"(signer {base64.b64encode(self.signature.public_key).decode()})"
            )
        try:
            owner_vkey.verify(self.signature.sig, self.canonical_bytes())
        except InvalidSignature:
            raise ModelIntegrityError(
                "the manifest's signature does not verify: the manifest was modified after "
                "the owner signed it"
            ) from None

    def file(self, path: str) -> ManifestFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)


def manifest_digest(manifest: Manifest) -> str:
    """The model version's identity: SHA-256 of the unsigned manifest's RFC 8785 bytes, hex."""
    return hashlib.sha256(manifest.canonical_bytes()).hexdigest()


def new_manifest(model: str, version: str, key_id: str, files: list[ManifestFile]) -> Manifest:
    """Build an unsigned manifest; ``files`` are sorted by path here."""
    ordered = tuple(sorted(files, key=lambda f: f.path.encode("utf-8")))
    return _checked(
        Manifest(check_name("model", model), check_name("version", version), key_id, ordered)
    )


def parse_manifest(data: bytes) -> Manifest:
    """Parse untrusted ``manifest.json`` bytes; :class:`ModelInputError` says what is wrong."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ModelInputError(f"manifest is {len(data)} bytes, above {MAX_MANIFEST_BYTES}")
    try:
        doc = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
        )
    except UnicodeDecodeError:
        raise ModelInputError("manifest is not UTF-8") from None
    except RecursionError:
        raise ModelInputError("manifest nests too deeply") from None
    except ValueError as e:
        raise ModelInputError(f"manifest is not JSON: {e}") from None
    _members(doc, "manifest", _TOP, optional=("signature",))
    if doc["format"] != FORMAT:
        raise ModelInputError(f"manifest format is {doc['format']!r}, not {FORMAT!r}")
    if doc["encryption"] != ENCRYPTION:
        raise ModelInputError(f"manifest encryption is {doc['encryption']!r}, not {ENCRYPTION!r}")
    model = check_name("model", _string(doc, "model"))
    version = check_name("version", _string(doc, "version"))
    key = _hex64(doc, "key_id")
    if not isinstance(doc["files"], list):
        raise ModelInputError("manifest files is not a list")
    files = []
    for i, item in enumerate(doc["files"]):
        where = f"manifest files[{i}]"
        _members(item, where, _FILE)
        size = item["plaintext_size"]
        if type(size) is not int or not 0 <= size <= _MAX_SIZE:
            raise ModelInputError(f"{where}.plaintext_size is not an integer in 0..2^53-1")
        path = check_relative_path(_string(item, "path", where))
        files.append(ManifestFile(path, size, _hex64(item, "ciphertext_sha256", where)))
    signature = None
    if "signature" in doc:
        sig = doc["signature"]
        _members(sig, "manifest signature", _SIG)
        if sig["alg"] != SIGNATURE_ALG:
            raise ModelInputError(f"manifest signature alg is {sig['alg']!r}, not Ed25519")
        signature = ManifestSignature(_b64(sig, "public_key", 32), _b64(sig, "sig", 64))
    manifest = Manifest(model, version, key, tuple(files), signature)
    return _checked(manifest)


def _checked(manifest: Manifest) -> Manifest:
    if not _HEX64.fullmatch(manifest.key_id):
        raise ModelInputError("key_id is not 64 lowercase hex digits")
    paths = [f.path.encode("utf-8") for f in manifest.files]
    for a, b in itertools.pairwise(paths):
        if a == b:
            raise ModelInputError(f"manifest lists {a.decode()!r} twice")
        if a > b:
            raise ModelInputError("manifest files are not sorted by path")
    directories = set()
    for f in manifest.files:
        check_relative_path(f.path)
        parts = f.path.split("/")
        directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for f in manifest.files:
        if f.path in directories:
            raise ModelInputError(f"manifest lists {f.path!r} as a file and as a directory")
    return manifest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ModelInputError(f"manifest has the member {k!r} twice")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ModelInputError(f"manifest contains {name}, which is not JSON")


def _members(
    obj: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    if not isinstance(obj, dict):
        raise ModelInputError(f"{where} is not a JSON object")
    missing = [k for k in required if k not in obj]
    if missing:
        raise ModelInputError(f"{where} lacks {', '.join(missing)}")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise ModelInputError(f"{where} has unknown members {', '.join(unknown)}")


def _string(obj: dict[str, Any], key: str, where: str = "manifest") -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise ModelInputError(f"{where}.{key} is not a string")
    return value


def _hex64(obj: dict[str, Any], key: str, where: str = "manifest") -> str:
    value = _string(obj, key, where)
    if not _HEX64.fullmatch(value):
        raise ModelInputError(f"{where}.{key} is not 64 lowercase hex digits")
    return value


def _b64(obj: dict[str, Any], key: str, size: int) -> bytes:
    value = _string(obj, key, "manifest signature")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ModelInputError(f"manifest signature {key} is not base64") from None
    if len(raw) != size:
        raise ModelInputError(f"manifest signature {key} is {len(raw)} bytes, not {size}")
    return raw
