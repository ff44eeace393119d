"""An encrypted model directory: encrypt a model version, decrypt it, verify it.

``ENC_DIR`` holds every file of the source directory at its relative path, each in Tink's
streaming AEAD ``AES256_GCM_HKDF_1MB`` format under the model key with the associated data of
:func:`teelog.models.binding.associated_data`, plus ``manifest.json``
(:mod:`teelog.models.manifest`). Decryption does not hash anything: every segment's AES-GCM tag,
the associated data and the last-segment flag already authenticate content, place and length
(hashing would cost several times the decryption, see docs/PERFORMANCE.md); ``verify`` checks
the ciphertext digests and the owner's signature without the key.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import streaming_aead
from .binding import MANIFEST_NAME, associated_data, check_relative_path
from .errors import (
    ModelInputError,
    ModelIntegrityError,
    SegmentAuthenticationError,
    WrongKeyError,
)
from .keys import key_id
from .manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestFile,
    manifest_digest,
    new_manifest,
    parse_manifest,
)
from .staging import Staging


class _HashingWriter:
    """Writes through to ``dst`` and hashes what passes (the ciphertext's SHA-256)."""

    def __init__(self, dst: BinaryIO) -> None:
        self.dst = dst
        self.sha256 = hashlib.sha256()

    def write(self, data: memoryview) -> int | None:
        n = self.dst.write(data)
        if n is not None:
            self.sha256.update(data[:n])
        return n


def source_files(src_dir: Path) -> list[str]:
    """Relative POSIX paths of every file under ``src_dir``, sorted by their UTF-8 bytes.

    File symlinks are followed (a Hugging Face snapshot is symlinks into its blob store);
    directory symlinks, sockets, devices and broken links are refused rather than skipped.
    """
    if not src_dir.is_dir():
        raise ModelInputError(f"{src_dir} is not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(src_dir, onerror=_walk_error):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                raise ModelInputError(f"{base / name} is a symlink to a directory; not followed")
        for name in filenames:
            path = base / name
            try:
                mode = path.stat().st_mode
            except OSError as e:
                raise ModelInputError(f"cannot read {path}: {e.strerror}") from None
            if not stat.S_ISREG(mode):
                raise ModelInputError(f"{path} is not a regular file")
            rel = path.relative_to(src_dir).as_posix()
            found.append(check_relative_path(rel))
    if not found:
        raise ModelInputError(f"{src_dir} holds no files")
    return sorted(found, key=lambda p: p.encode("utf-8"))


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for unbuffered reading if it is a regular file (symlinks followed).

    Opened non-blocking first, so that a FIFO planted at a listed name cannot hang the reader
    before the type check refuses it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelIntegrityError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def _walk_error(e: OSError) -> None:
    raise ModelInputError(f"cannot list {e.filename}: {e.strerror}")


def _inside(a: Path, b: Path) -> bool:
    ra, rb = os.path.realpath(a), os.path.realpath(b)
    return os.path.commonpath([ra, rb]) == rb


def encrypt_model(
    src_dir: Path,
    out_dir: Path,
    *,
    model: str,
    version: str,
    key: bytes,
    owner_key: Ed25519PrivateKey | None = None,
) -> Manifest:
    """Encrypt every file of ``src_dir`` into the empty (or new) ``out_dir``; return the manifest.

    Nothing is left in ``out_dir`` if any file fails.
    """
    kid = key_id(key)
    paths = source_files(src_dir)
    for ad_path in paths:
        associated_data(model, version, ad_path)  # model, version and paths all usable
    if _inside(out_dir, src_dir) or _inside(src_dir, out_dir):
        raise ModelInputError(f"{out_dir} and {src_dir} overlap; choose a separate OUT_DIR")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise ModelInputError(f"{out_dir} is not empty")
    files = []
    with Staging(out_dir, 0o644) as staging:
        for rel in paths:
            src_path = src_dir.joinpath(*rel.split("/"))
            with open_regular(src_path) as src, staging.open(rel) as dst:
                writer = _HashingWriter(dst)
                size = streaming_aead.encrypt(
                    key, associated_data(model, version, rel), src, writer
                )
            files.append(ManifestFile(rel, size, writer.sha256.hexdigest()))
        manifest = new_manifest(model, version, kid, files)
        if owner_key is not None:
            manifest = manifest.signed(owner_key)
        with staging.open(MANIFEST_NAME) as out:
            out.write(manifest.dumps())
        staging.commit()
    return manifest


def read_manifest(enc_dir: Path) -> Manifest:
    """Parse ``ENC_DIR/manifest.json``."""
    path = enc_dir / MANIFEST_NAME
    try:
        with open_regular(path) as f:
            data = _read_at_most(f, MAX_MANIFEST_BYTES + 1)  # parse_manifest names a larger size
    except FileNotFoundError:
        raise ModelInputError(f"{enc_dir} has no {MANIFEST_NAME}") from None
    except ModelIntegrityError as e:
        raise ModelInputError(str(e)) from None
    except OSError as e:
        raise ModelInputError(f"cannot read {path}: {e.strerror}") from None
    return parse_manifest(data)


def _read_at_most(f: BinaryIO, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit and (chunk := f.read(limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _open_ciphertext(enc_dir: Path, entry: ManifestFile) -> BinaryIO:
    path = enc_dir.joinpath(*entry.path.split("/"))
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise ModelIntegrityError(f"{entry.path}: listed in the manifest but missing") from None
    except OSError as e:
        raise ModelInputError(f"cannot read {path}: {e.strerror}") from None


def _size_hint(src: BinaryIO, entry: ManifestFile) -> str:
    actual = os.fstat(src.fileno()).st_size
    if actual == entry.ciphertext_size:
        return ""
    return (
        f" (the file is {actual} bytes; the manifest's plaintext size means "
        f"{entry.ciphertext_size})"
    )


def _swapped_with(key: bytes, manifest: Manifest, entry: ManifestFile, src: BinaryIO) -> str | None:
    """The manifest path whose associated data opens this file's first segment, if another's."""
    for other in manifest.files:
        if other.path == entry.path:
            continue
        src.seek(0)
        ad = associated_data(manifest.model, manifest.version, other.path)
        try:
            streaming_aead.decrypt(key, ad, src, _FirstSegmentSink())
        except _FirstSegmentSink.Opened:
            pass
        except ModelIntegrityError:
            continue
        return other.path
    return None


class _FirstSegmentSink:
    """Stops a decryption once its first segment authenticated (the diagnosis needs no more)."""

    class Opened(Exception):
        pass

    def write(self, data: memoryview) -> int:
        raise self.Opened


def decrypt_model(enc_dir: Path, out_dir: Path, key: bytes) -> Manifest:
    """Decrypt every file the manifest of ``enc_dir`` lists into ``out_dir``; return the manifest.

    Every file goes to a temporary name first; all are renamed into place only when all of them
    decrypted and matched the manifest's sizes, otherwise all are deleted.
    """
    manifest = read_manifest(enc_dir)
    kid = key_id(key)
    if kid != manifest.key_id:
        raise WrongKeyError(f"wrong key: its key id is {kid}, the manifest's is {manifest.key_id}")
    with Staging(out_dir, 0o600) as staging:
        for entry in manifest.files:
            ad = associated_data(manifest.model, manifest.version, entry.path)
            with _open_ciphertext(enc_dir, entry) as src, staging.open(entry.path) as dst:
                try:
                    size = streaming_aead.decrypt(key, ad, src, dst)
                except SegmentAuthenticationError as e:
                    if e.segment == 0:
                        other = _swapped_with(key, manifest, entry, src)
                        if other is not None:
                            raise ModelIntegrityError(
                                f"{entry.path}: holds the ciphertext of {other} "
                                "(files swapped or renamed)"
                            ) from e
                    raise ModelIntegrityError(f"{entry.path}: {e}{_size_hint(src, entry)}") from e
                except ModelIntegrityError as e:
                    raise ModelIntegrityError(f"{entry.path}: {e}{_size_hint(src, entry)}") from e
            if size != entry.plaintext_size:
                raise ModelIntegrityError(
                    f"{entry.path}: decrypted to {size} bytes, the manifest says "
                    f"{entry.plaintext_size}"
                )
        staging.commit()
    return manifest


@dataclass(frozen=True)
class ModelCheck:
    """One line of ``teelog model verify``: what was checked and whether it held.

    Not attestation's ``Check`` (``teelog.models`` imports nothing else of ours): these checks
    only pass or fail, none is a warning or can be skipped.
    """

    name: str
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    """The result of :func:`verify_model`: the manifest, its digest and every check."""

    manifest: Manifest
    digest: str
    checks: list[ModelCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    buf = bytearray(streaming_aead.CIPHERTEXT_SEGMENT_SIZE)
    view = memoryview(buf)
    size = 0
    with open_regular(path) as f:
        while n := f.readinto(view):
            h.update(view[:n])
            size += n
    return size, h.hexdigest()


def _listed_files(enc_dir: Path) -> Iterator[str]:
    for dirpath, _dirnames, filenames in os.walk(enc_dir):
        for name in filenames:
            yield (Path(dirpath) / name).relative_to(enc_dir).as_posix()


def verify_model(enc_dir: Path, owner_vkey: Ed25519PublicKey | None = None) -> VerifyReport:
    """Check ``enc_dir`` without the key: the owner's signature, every ciphertext's size and
    SHA-256, and that no file is there which the manifest does not list."""
    manifest = read_manifest(enc_dir)
    report = VerifyReport(manifest, manifest_digest(manifest))
    if owner_vkey is not None:
        try:
            manifest.verify_signature(owner_vkey)
            report.checks.append(ModelCheck("signature", True, "signed by the owner's key"))
        except ModelIntegrityError as e:
            report.checks.append(ModelCheck("signature", False, str(e)))
    for entry in manifest.files:
        path = enc_dir.joinpath(*entry.path.split("/"))
        try:
            size, digest = _hash_file(path)
        except OSError as e:
            report.checks.append(ModelCheck(entry.path, False, f"cannot read: {e.strerror}"))
            continue
        except ModelIntegrityError as e:
            report.checks.append(ModelCheck(entry.path, False, str(e)))
            continue
        if size != entry.ciphertext_size:
            report.checks.append(
                ModelCheck(entry.path, False, f"{size} bytes, expected {entry.ciphertext_size}")
            )
        elif digest != entry.ciphertext_sha256:
            report.checks.append(ModelCheck(entry.path, False, f"SHA-256 {digest} differs"))
        else:
            report.checks.append(ModelCheck(entry.path, True, f"SHA-256 {digest}"))
    listed = {f.path for f in manifest.files} | {MANIFEST_NAME}
    for rel in sorted(set(_listed_files(enc_dir)) - listed):
        report.checks.append(ModelCheck(rel, False, "not listed in the manifest"))
    return report
