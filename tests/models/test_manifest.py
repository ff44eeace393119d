"""manifest.json: canonical digest, owner signature, key id, strict parsing of untrusted input."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from teelog.models import (
    ManifestFile,
    ModelInputError,
    ModelIntegrityError,
    associated_data,
    key_id,
    manifest_digest,
    new_manifest,
    parse_manifest,
)

KEY = bytes(range(32))
FILES = [
    ManifestFile("tokenizer/vocab.json", 10, "ab" * 32),
    ManifestFile("config.json", 0, "cd" * 32),
]


def manifest():
    return new_manifest("llama", "v1", key_id(KEY), list(FILES))


def document(**changes):
    doc = manifest().to_json()
    doc.update(changes)
    return json.dumps(doc).encode()


def test_key_id_is_hmac_sha256_of_the_label_and_not_the_key():
    kid = key_id(KEY)
    assert kid == hmac.new(KEY, b"teelog-key-id/v1", hashlib.sha256).hexdigest()
    assert KEY.hex() not in kid
    assert key_id(bytes(32)) != kid


def test_files_are_sorted_by_path():
    assert [f.path for f in manifest().files] == ["config.json", "tokenizer/vocab.json"]


def test_digest_is_sha256_of_the_rfc8785_unsigned_manifest():
    m = manifest()
    expected = hashlib.sha256(rfc8785.dumps(m.unsigned_json())).hexdigest()
    assert manifest_digest(m) == expected
    assert "signature" not in m.unsigned_json()


def test_signing_does_not_change_the_digest_and_verifies_with_the_owner_key():
    owner = Ed25519PrivateKey.generate()
    m = manifest()
    signed = m.signed(owner)
    assert manifest_digest(signed) == manifest_digest(m)
    signed.verify_signature(owner.public_key())
    owner.public_key().verify(signed.signature.sig, rfc8785.dumps(m.unsigned_json()))


def test_a_file_roundtrips_through_dumps_and_parse():
    signed = manifest().signed(Ed25519PrivateKey.generate())
    assert parse_manifest(signed.dumps()) == signed


def test_another_owner_key_is_refused():
    signed = manifest().signed(Ed25519PrivateKey.generate())
    with pytest.raises(ModelIntegrityError, match="another key"):
        signed.verify_signature(Ed25519PrivateKey.generate().public_key())


def test_a_manifest_changed_after_signing_fails_its_signature():
    owner = Ed25519PrivateKey.generate()
    doc = manifest().signed(owner).to_json()
    doc["version"] = "v2"
    with pytest.raises(ModelIntegrityError, match="does not verify"):
        parse_manifest(json.dumps(doc).encode()).verify_signature(owner.public_key())


def test_an_unsigned_manifest_fails_when_an_owner_key_is_given():
    with pytest.raises(ModelIntegrityError, match="not signed"):
        manifest().verify_signature(Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"format": "teelog-model/v1", "format": "x"}', "twice"),
        (document(extra=1), "unknown members extra"),
        (document(format="teelog-model/v2"), "format"),
        (document(encryption="AES128_GCM_HKDF_4KB"), "encryption"),
        (document(key_id="AB" * 32), "key_id"),
        (document(model="a\nb"), "control character"),
        (document(version=""), "empty"),
        (
            document(
                files=[{"path": "../evil", "plaintext_size": 1, "ciphertext_sha256": "0" * 64}]
            ),
            "'..'",
        ),
        (
            document(
                files=[{"path": "/etc/passwd", "plaintext_size": 1, "ciphertext_sha256": "0" * 64}]
            ),
            "absolute",
        ),
        (
            document(files=[{"path": "a\\b", "plaintext_size": 1, "ciphertext_sha256": "0" * 64}]),
            "backslash",
        ),
        (
            document(
                files=[
                    {"path": "manifest.json", "plaintext_size": 1, "ciphertext_sha256": "0" * 64}
                ]
            ),
            "manifest's name",
        ),
        (
            document(files=[{"path": "a", "plaintext_size": 1.5, "ciphertext_sha256": "0" * 64}]),
            "plaintext_size",
        ),
        (
            document(files=[{"path": "a", "plaintext_size": True, "ciphertext_sha256": "0" * 64}]),
            "plaintext_size",
        ),
        (
            document(
                files=[
                    {"path": "b", "plaintext_size": 1, "ciphertext_sha256": "0" * 64},
                    {"path": "a", "plaintext_size": 1, "ciphertext_sha256": "0" * 64},
                ]
            ),
            "not sorted",
        ),
        (
            document(
                files=[
                    {"path": "a", "plaintext_size": 1, "ciphertext_sha256": "0" * 64},
                    {"path": "a", "plaintext_size": 1, "ciphertext_sha256": "0" * 64},
                ]
            ),
            "twice",
        ),
        (
            document(
                files=[
                    {"path": "a", "plaintext_size": 1, "ciphertext_sha256": "0" * 64},
                    {"path": "a/b", "plaintext_size": 1, "ciphertext_sha256": "0" * 64},
                ]
            ),
            "file and as a directory",
        ),
        (document(signature={"alg": "ES256", "public_key": "", "sig": ""}), "Ed25519"),
        (
            document(signature={"alg": "Ed25519", "public_key": "AAAA", "sig": "A" * 88}),
            "public_key is 3 bytes",
        ),
        (b'{"format": NaN}', "NaN"),
        (b"[" * 5000, "nests too deeply"),
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
    ],
)
def test_malformed_manifests_are_refused_with_the_reason(data, message):
    with pytest.raises(ModelInputError, match=message):
        parse_manifest(data)


def test_associated_data_is_the_issue_layout():
    ad = associated_data("llama", "v1", "sub/model.safetensors")
    assert ad == b"teelog-model/v1\nllama\nv1\nsub/model.safetensors"


def test_associated_data_refuses_a_newline_in_the_version():
    with pytest.raises(ModelInputError, match="control character"):
        associated_data("llama", "v1\nsub", "model.safetensors")
