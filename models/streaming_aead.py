"""Tink streaming AEAD ``AES256_GCM_HKDF_1MB``, byte for byte.

The wire format of Tink's ``AesGcmHkdfStreaming`` key type (Tink streaming AEAD, "AES-GCM-HKDF
streaming", developers.google.com/tink/streaming-aead/aes_gcm_hkdf_streaming; read in tink-go
``streamingaead/subtle/aes_gcm_hkdf.go`` and ``streamingaead/subtle/noncebased/noncebased.go``)
with the parameters of the ``AES256_GCM_HKDF_1MB`` key template: main key 32 bytes, HKDF-SHA256,
derived key 32 bytes, ciphertext segment size 1,048,576.

    ciphertext  = header ‖ segment_0 ‖ … ‖ segment_{n-1}
    header      = 0x28 (header length, 40) ‖ salt (32 random bytes) ‖ nonce prefix (7 random)
    file key    = HKDF-SHA256(ikm = main key, salt = salt, info = associated data, L = 32)
    segment_i   = AES-256-GCM(file key, nonce_i, plaintext_i, aad = empty) incl. 16-byte tag
    nonce_i     = nonce prefix ‖ u32 big-endian i ‖ 0x01 for the last segment, else 0x00

Every ciphertext segment is exactly 1,048,576 bytes except the last; the first one is shorter by
the header, so it holds 1,048,576 − 40 − 16 plaintext bytes. As in Tink's writer, a segment is
written as non-last only once more plaintext follows it: the last segment is never empty unless
the whole plaintext is (an empty plaintext is one 16-byte segment). The associated data is never
stored; a ciphertext opened with other associated data fails at segment 0. Tink keysets add no
output prefix to streaming AEAD ciphertexts (the templates use ``OutputPrefixType.RAW``), so
these bytes are exactly what Tink's ``StreamingAead`` reads and writes.

Both directions stream through two preallocated buffers with ``encrypt_into``/``decrypt_into``
(``cryptography`` 47.0 and later; the file object's ``readinto`` fills the input buffer), and
read one byte ahead, as Tink's reader does, to learn whether a segment is the last without
knowing the length in advance.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import (
    ExtendedCiphertext,
    MalformedCiphertext,
    ModelInputError,
    SegmentAuthenticationError,
    TruncatedCiphertext,
)

KEY_SIZE = 32
SALT_SIZE = 32  # Tink: the salt is as long as the derived key
NONCE_PREFIX_SIZE = 7
HEADER_LENGTH = 1 + SALT_SIZE + NONCE_PREFIX_SIZE  # 40 = 0x28
TAG_SIZE = 16
CIPHERTEXT_SEGMENT_SIZE = 1 << 20
PLAINTEXT_SEGMENT_SIZE = CIPHERTEXT_SEGMENT_SIZE - TAG_SIZE
FIRST_PLAINTEXT_SEGMENT_SIZE = PLAINTEXT_SEGMENT_SIZE - HEADER_LENGTH
# Tink refuses segment number 2^32 − 1 and above (noncebased.generateSegmentNonce).
MAX_SEGMENTS = (1 << 32) - 1

_SEGMENT_INDEX = struct.Struct(">I")


class Writable(Protocol):
    """Where ciphertext or plaintext goes: ``write`` returns how many bytes it took."""

    def write(self, data: memoryview, /) -> int | None: ...


def segment_count(plaintext_size: int) -> int:
    """Number of segments Tink writes for ``plaintext_size`` bytes (at least one)."""
    if plaintext_size <= FIRST_PLAINTEXT_SEGMENT_SIZE:
        return 1
    rest = plaintext_size - FIRST_PLAINTEXT_SEGMENT_SIZE
    return 1 + -(-rest // PLAINTEXT_SEGMENT_SIZE)


def ciphertext_size(plaintext_size: int) -> int:
    """Length of the ciphertext of ``plaintext_size`` bytes: header plus one tag per segment."""
    if plaintext_size < 0:
        raise ValueError("a plaintext size is never negative")
    return HEADER_LENGTH + plaintext_size + TAG_SIZE * segment_count(plaintext_size)


def derive_file_key(key: bytes, salt: bytes, associated_data: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) of the main key with the header's salt, info = associated data."""
    return HKDF(hashes.SHA256(), KEY_SIZE, salt, associated_data).derive(key)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ModelInputError(f"an AES256_GCM_HKDF_1MB key is {KEY_SIZE} bytes, not {len(key)}")


def _read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``src``; return how many bytes arrived (fewer only at end of input)."""
    got = 0
    while got < len(buf):
        n = src.readinto(buf[got:])
        if not n:
            break
        got += n
    return got


def _write_full(dst: Writable, data: memoryview) -> None:
    """Write all of ``data``: a raw file's ``write`` may take only part of it."""
    while data:
        n = dst.write(data)
        if n is None:  # only a non-blocking raw file answers None ("would block")
            raise BlockingIOError("the destination is non-blocking and would block")
        data = data[n:]


def encrypt(key: bytes, associated_data: bytes, src: BinaryIO, dst: Writable) -> int:
    """Encrypt everything ``src`` yields into ``dst``; return the plaintext length.

    ``src`` needs ``readinto`` (an unbuffered file is fastest); salt and nonce prefix are fresh
    random bytes, so two encryptions of the same file differ.
    """
    _check_key(key)
    salt = os.urandom(SALT_SIZE)
    nonce_prefix = os.urandom(NONCE_PREFIX_SIZE)
    aead = AESGCM(derive_file_key(key, salt, associated_data))
    _write_full(dst, memoryview(bytes([HEADER_LENGTH]) + salt + nonce_prefix))

    # One spare byte: a full segment is written as non-last only once a byte follows it.
    pt = bytearray(PLAINTEXT_SEGMENT_SIZE + 1)
    ct = bytearray(CIPHERTEXT_SEGMENT_SIZE)
    ptv, ctv = memoryview(pt), memoryview(ct)
    nonce = bytearray(nonce_prefix + bytes(5))
    index = pos = total = 0
    while True:
        limit = FIRST_PLAINTEXT_SEGMENT_SIZE if index == 0 else PLAINTEXT_SEGMENT_SIZE
        got = pos + _read_full(src, ptv[pos : limit + 1])
        last = got <= limit
        size = got if last else limit
        if index >= MAX_SEGMENTS:
            raise ModelInputError(f"plaintext needs more than {MAX_SEGMENTS} segments")
        _SEGMENT_INDEX.pack_into(nonce, NONCE_PREFIX_SIZE, index)
        nonce[11] = 1 if last else 0
        aead.encrypt_into(nonce, ptv[:size], None, ctv[: size + TAG_SIZE])
        _write_full(dst, ctv[: size + TAG_SIZE])
        total += size
        if last:
            return total
        pt[0] = pt[limit]
        pos = 1
        index += 1


def decrypt(key: bytes, associated_data: bytes, src: BinaryIO, dst: Writable) -> int:
    """Decrypt the ciphertext ``src`` yields into ``dst``; return the plaintext length.

    Every segment's tag is verified before its plaintext is written, so ``dst`` only ever
    receives authenticated bytes; on an error it holds a verified prefix, which callers must
    discard (``teelog.models.staging`` does). Raises :class:`MalformedCiphertext`,
    :class:`SegmentAuthenticationError` (wrong key or associated data, a modified or reordered
    segment), :class:`TruncatedCiphertext` or :class:`ExtendedCiphertext`.
    """
    _check_key(key)
    header = bytearray(HEADER_LENGTH)
    got = _read_full(src, memoryview(header))
    if got < HEADER_LENGTH:
        raise MalformedCiphertext(
            f"ciphertext is {got} bytes, shorter than the {HEADER_LENGTH}-byte header"
        )
    if header[0] != HEADER_LENGTH:
        raise MalformedCiphertext(
            f"header length byte is 0x{header[0]:02x}, not 0x{HEADER_LENGTH:02x}: "
            "not a Tink AES256_GCM_HKDF_1MB ciphertext"
        )
    salt = bytes(header[1 : 1 + SALT_SIZE])
    aead = AESGCM(derive_file_key(key, salt, associated_data))

    # One spare byte, as in Tink's reader: a segment is the last one iff it ends the input.
    ct = bytearray(CIPHERTEXT_SEGMENT_SIZE + 1)
    pt = bytearray(PLAINTEXT_SEGMENT_SIZE)
    ctv, ptv = memoryview(ct), memoryview(pt)
    nonce = bytearray(header[1 + SALT_SIZE :] + bytes(5))
    index = pos = total = 0
    while True:
        limit = CIPHERTEXT_SEGMENT_SIZE - (HEADER_LENGTH if index == 0 else 0)
        got = pos + _read_full(src, ctv[pos : limit + 1])
        last = got <= limit
        size = got if last else limit
        if size < TAG_SIZE:
            raise TruncatedCiphertext(
                f"segment {index} is {size} bytes, shorter than its {TAG_SIZE}-byte tag"
            )
        if index >= MAX_SEGMENTS:
            raise MalformedCiphertext(f"ciphertext has more than {MAX_SEGMENTS} segments")
        _SEGMENT_INDEX.pack_into(nonce, NONCE_PREFIX_SIZE, index)
        nonce[11] = 1 if last else 0
        try:
            aead.decrypt_into(nonce, ctv[:size], None, ptv[: size - TAG_SIZE])
        except InvalidTag:
            raise _diagnose(aead, nonce, ctv[:size], index, last) from None
        _write_full(dst, ptv[: size - TAG_SIZE])
        total += size - TAG_SIZE
        if last:
            return total
        ct[0] = ct[limit]
        pos = 1
        index += 1


def _diagnose(
    aead: AESGCM, nonce: bytearray, segment: memoryview, index: int, last: bool
) -> Exception:
    """Say why segment ``index`` failed: only the last-segment flag is tried the other way.

    A segment that verifies with the opposite flag is genuine but in the wrong place: the input
    was cut after it (truncation at a segment boundary) or continues past it (appended data).
    """
    nonce[11] = 0 if last else 1
    try:
        aead.decrypt(bytes(nonce), bytes(segment), None)
    except InvalidTag:
        return SegmentAuthenticationError(
            f"segment {index} failed authentication: wrong key or associated data (a file "
            "swapped or renamed), or the ciphertext was modified or its segments reordered",
            index,
        )
    if last:
        return TruncatedCiphertext(
            f"ciphertext ends after segment {index}, which is not the last segment: truncated"
        )
    return ExtendedCiphertext(
        f"ciphertext continues after segment {index}, which is the last segment: data was appended"
    )
