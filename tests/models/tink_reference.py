"""Google's ``tink`` as the independent implementation of AES256_GCM_HKDF_1MB, for the tests."""

from __future__ import annotations

import io

import tink
from tink import secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

streaming_aead.register()


def tink_streaming_aead(key: bytes) -> streaming_aead.StreamingAead:
    """Tink's StreamingAead for a raw 32-byte key with the AES256_GCM_HKDF_1MB parameters.

    The keyset holds one AesGcmHkdfStreamingKey with output prefix RAW, as Tink's own template
    makes it; streaming AEAD ciphertexts carry no key-id prefix either way.
    """
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
        ciphertext_segment_size=1 << 20, derived_key_size=32, hkdf_hash_type=common_pb2.SHA256
    )
    key_proto = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
        version=0, key_value=key, params=params
    )
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
                    value=key_proto.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=1,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    return handle.primitive(streaming_aead.StreamingAead)


class _Capture(io.BytesIO):
    """Tink closes the destination when the encrypting stream closes; keep the bytes."""

    value = b""

    def close(self) -> None:
        self.value = self.getvalue()
        super().close()


def tink_encrypt(key: bytes, associated_data: bytes, plaintext: bytes) -> bytes:
    out = _Capture()
    with tink_streaming_aead(key).new_encrypting_stream(out, associated_data) as stream:
        stream.write(plaintext)
    return out.value


def tink_decrypt(key: bytes, associated_data: bytes, ciphertext: bytes) -> bytes:
    with tink_streaming_aead(key).new_decrypting_stream(
        io.BytesIO(ciphertext), associated_data
    ) as stream:
        return stream.read()
