"""Tink streaming AEAD AES256_GCM_HKDF_1MB: byte compatibility with Google's tink, failures."""

from __future__ import annotations

import io
import random

import pytest
import tink
from hypothesis import given, settings
from hypothesis import strategies as st
from teelog.models import streaming_aead as sa
from teelog.models.errors import (
    ExtendedCiphertext,
    MalformedCiphertext,
    SegmentAuthenticationError,
    TruncatedCiphertext,
)
from tink_reference import tink_decrypt, tink_encrypt

KEY = random.Random(1).randbytes(32)
AD = b"teelog-model/v1\nm\n1\nmodel.safetensors"
FIRST = sa.FIRST_PLAINTEXT_SEGMENT_SIZE
FULL = sa.PLAINTEXT_SEGMENT_SIZE
# Empty, one byte, the exact one-segment boundary and one past it, the exact two-segment
# boundary and one past it, and a many-segment file with a short last segment.
SIZES = [0, 1, FIRST - 1, FIRST, FIRST + 1, FIRST + FULL, FIRST + FULL + 1, 3 * FULL + 12345]


def encrypt(plaintext: bytes, ad: bytes = AD) -> bytes:
    out = io.BytesIO()
    assert sa.encrypt(KEY, ad, io.BytesIO(plaintext), out) == len(plaintext)
    return out.getvalue()


def decrypt(ciphertext: bytes, ad: bytes = AD, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    n = sa.decrypt(key, ad, io.BytesIO(ciphertext), out)
    assert n == len(out.getvalue())
    return out.getvalue()


def segments(ciphertext: bytes) -> list[bytes]:
    body = ciphertext[sa.HEADER_LENGTH :]
    first = sa.CIPHERTEXT_SEGMENT_SIZE - sa.HEADER_LENGTH
    out = [body[:first]]
    body = body[first:]
    while body:
        out.append(body[: sa.CIPHERTEXT_SEGMENT_SIZE])
        body = body[sa.CIPHERTEXT_SEGMENT_SIZE :]
    return out


@pytest.mark.parametrize("size", SIZES)
def test_tink_decrypts_what_teelog_encrypts(size):
    plaintext = random.Random(size).randbytes(size)
    ciphertext = encrypt(plaintext)
    assert len(ciphertext) == sa.ciphertext_size(size)
    assert ciphertext[0] == 0x28
    assert tink_decrypt(KEY, AD, ciphertext) == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_teelog_decrypts_what_tink_encrypts(size):
    plaintext = random.Random(size).randbytes(size)
    ciphertext = tink_encrypt(KEY, AD, plaintext)
    # Same length as teelog's: same segmenting, no key-id prefix from the RAW keyset.
    assert len(ciphertext) == sa.ciphertext_size(size)
    assert len(segments(ciphertext)) == sa.segment_count(size)
    assert decrypt(ciphertext) == plaintext


def test_tink_refuses_teelog_output_under_other_associated_data():
    ciphertext = encrypt(b"weights")
    with pytest.raises(tink.TinkError):
        tink_decrypt(KEY, AD + b"x", ciphertext)


def test_a_full_last_segment_is_flagged_last_not_followed_by_an_empty_one():
    ciphertext = encrypt(bytes(FIRST))
    assert len(ciphertext) == sa.CIPHERTEXT_SEGMENT_SIZE
    assert len(segments(ciphertext)) == 1


def test_other_associated_data_fails_at_segment_zero():
    ciphertext = encrypt(b"weights" * 1000)
    with pytest.raises(SegmentAuthenticationError) as e:
        decrypt(ciphertext, ad=b"teelog-model/v1\nm\n1\nother.safetensors")
    assert e.value.segment == 0


def test_wrong_key_fails_at_segment_zero():
    with pytest.raises(SegmentAuthenticationError, match="segment 0 failed authentication"):
        decrypt(encrypt(b"weights"), key=bytes(32))


def test_reordered_segments_fail_where_the_order_breaks():
    ciphertext = encrypt(random.Random(2).randbytes(FIRST + 3 * FULL))
    segs = segments(ciphertext)
    swapped = ciphertext[: sa.HEADER_LENGTH] + b"".join([segs[0], segs[2], segs[1], segs[3]])
    with pytest.raises(SegmentAuthenticationError) as e:
        decrypt(swapped)
    assert e.value.segment == 1


def test_truncation_at_a_segment_boundary_is_named_truncation():
    ciphertext = encrypt(random.Random(3).randbytes(FIRST + FULL + 100))
    cut = ciphertext[: sa.CIPHERTEXT_SEGMENT_SIZE * 2]
    with pytest.raises(TruncatedCiphertext, match="segment 1, which is not the last"):
        decrypt(cut)


def test_truncation_inside_a_segment_fails_its_tag():
    ciphertext = encrypt(random.Random(4).randbytes(FIRST + FULL + 100))
    with pytest.raises(SegmentAuthenticationError) as e:
        decrypt(ciphertext[:-50])
    assert e.value.segment == 2


def test_a_last_segment_shorter_than_its_tag_is_truncation():
    ciphertext = encrypt(random.Random(5).randbytes(FIRST + 100))
    with pytest.raises(TruncatedCiphertext, match="shorter than its 16-byte tag"):
        decrypt(ciphertext[: sa.CIPHERTEXT_SEGMENT_SIZE + 10])


def test_data_after_the_last_segment_is_named_an_extension():
    ciphertext = encrypt(bytes(FIRST))  # one full segment, flagged last
    with pytest.raises(ExtendedCiphertext, match="continues after segment 0"):
        decrypt(ciphertext + b"appended")


def test_a_flipped_bit_fails_its_segment():
    ciphertext = bytearray(encrypt(random.Random(6).randbytes(FIRST + 10)))
    ciphertext[-3] ^= 1
    with pytest.raises(SegmentAuthenticationError) as e:
        decrypt(bytes(ciphertext))
    assert e.value.segment == 1


def test_a_modified_salt_fails_at_segment_zero():
    ciphertext = bytearray(encrypt(b"weights"))
    ciphertext[5] ^= 1
    with pytest.raises(SegmentAuthenticationError):
        decrypt(bytes(ciphertext))


def test_a_header_of_another_length_is_not_this_format():
    ciphertext = b"\x18" + encrypt(b"weights")[1:]  # the 16-byte-key variant's header length
    with pytest.raises(MalformedCiphertext, match="0x18, not 0x28"):
        decrypt(ciphertext)


def test_input_shorter_than_the_header_is_malformed():
    with pytest.raises(MalformedCiphertext, match="shorter than the 40-byte header"):
        decrypt(encrypt(b"")[:39])


def test_header_alone_is_truncated():
    with pytest.raises(TruncatedCiphertext):
        decrypt(encrypt(b"")[:40])


def test_no_plaintext_of_a_failing_segment_reaches_the_output():
    plaintext = random.Random(7).randbytes(FIRST + FULL + 10)
    ciphertext = bytearray(encrypt(plaintext))
    ciphertext[sa.CIPHERTEXT_SEGMENT_SIZE + 5] ^= 1  # inside segment 1
    out = io.BytesIO()
    with pytest.raises(SegmentAuthenticationError):
        sa.decrypt(KEY, AD, io.BytesIO(bytes(ciphertext)), out)
    assert out.getvalue() == plaintext[:FIRST]


def test_two_encryptions_of_one_file_differ_in_salt_and_nonce_prefix():
    a, b = encrypt(b"weights"), encrypt(b"weights")
    assert a[1:40] != b[1:40]
    assert decrypt(a) == decrypt(b) == b"weights"


def test_ciphertext_size_counts_header_and_one_tag_per_segment():
    assert sa.ciphertext_size(0) == 40 + 16
    assert sa.ciphertext_size(FIRST) == 1 << 20
    assert sa.ciphertext_size(FIRST + 1) == (1 << 20) + 1 + 16
    with pytest.raises(ValueError):
        sa.ciphertext_size(-1)


@settings(max_examples=40, deadline=None)
@given(
    base=st.sampled_from([0, FIRST, FIRST + FULL, FIRST + 2 * FULL]),
    offset=st.integers(min_value=0, max_value=40),
    ad=st.binary(max_size=64),
)
def test_tink_and_teelog_agree_around_every_segment_boundary(base, offset, ad):
    plaintext = random.Random(base + offset).randbytes(max(0, base - 20 + offset))
    assert tink_decrypt(KEY, ad, encrypt(plaintext, ad)) == plaintext
    assert decrypt(tink_encrypt(KEY, ad, plaintext), ad) == plaintext
