"""``teelog model encrypt|decrypt|verify`` end to end, with tink on the other side."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from teelog.models import (
    ManifestFile,
    associated_data,
    key_id,
    manifest_digest,
    new_manifest,
    parse_manifest,
    read_manifest,
)
from teelog.models import streaming_aead as sa
from tink_reference import tink_decrypt, tink_encrypt

from teelog.cli import main


def run(*argv: str | Path) -> int:
    return main(["model", *map(str, argv)])


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def owner_keys(tmp_path: Path) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    skey, vkey = tmp_path / "owner.pem", tmp_path / "owner.pub.pem"
    skey.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    vkey.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return skey, vkey


@pytest.fixture
def encrypted(tmp_path, model_dir):
    enc, key = tmp_path / "enc", tmp_path / "model.key"
    assert (
        run("encrypt", model_dir, enc, "--model", "llama", "--version", "v1", "--key-out", key) == 0
    )
    return enc, key


def test_encrypt_then_decrypt_gives_back_every_file(tmp_path, model_dir, encrypted, capsys):
    enc, key = encrypted
    out = tmp_path / "out"
    assert run("decrypt", enc, out, "--key", key) == 0
    assert tree(out) == tree(model_dir)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.rglob("*") if p.is_file())
    assert manifest_digest(read_manifest(enc)) in capsys.readouterr().out


def test_the_key_file_is_32_bytes_mode_0600_and_named_by_its_id_in_the_manifest(encrypted):
    enc, key = encrypted
    assert len(key.read_bytes()) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    manifest = read_manifest(enc)
    assert manifest.key_id == key_id(key.read_bytes())
    assert key.read_bytes().hex() not in (enc / "manifest.json").read_text()


def test_manifest_lists_sizes_and_ciphertext_digests(model_dir, encrypted):
    enc, _key = encrypted
    manifest = read_manifest(enc)
    assert [f.path for f in manifest.files] == sorted(tree(model_dir))
    for f in manifest.files:
        assert f.plaintext_size == (model_dir / f.path).stat().st_size
        assert f.ciphertext_sha256 == hashlib.sha256((enc / f.path).read_bytes()).hexdigest()


def test_tink_decrypts_every_file_teelog_wrote(model_dir, encrypted):
    enc, key = encrypted
    k = key.read_bytes()
    for rel, plaintext in tree(model_dir).items():
        ad = b"teelog-model/v1\nllama\nv1\n" + rel.encode()
        assert tink_decrypt(k, ad, (enc / rel).read_bytes()) == plaintext


def test_teelog_decrypts_a_model_tink_encrypted(tmp_path, model_dir):
    k = os.urandom(32)
    enc = tmp_path / "enc"
    files = []
    for rel, plaintext in tree(model_dir).items():
        ct = tink_encrypt(k, associated_data("llama", "v2", rel), plaintext)
        (enc / rel).parent.mkdir(parents=True, exist_ok=True)
        (enc / rel).write_bytes(ct)
        files.append(ManifestFile(rel, len(plaintext), hashlib.sha256(ct).hexdigest()))
    (enc / "manifest.json").write_bytes(new_manifest("llama", "v2", key_id(k), files).dumps())
    keyfile = tmp_path / "k"
    keyfile.write_bytes(k)
    assert run("verify", enc) == 0
    assert run("decrypt", enc, tmp_path / "out", "--key", keyfile) == 0
    assert tree(tmp_path / "out") == tree(model_dir)


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or list(out.rglob("*")) == []


def test_a_wrong_key_is_refused_by_its_id(tmp_path, encrypted, capsys):
    enc, _key = encrypted
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    assert run("decrypt", enc, tmp_path / "out", "--key", other) == 1
    assert "wrong key" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


def test_swapped_files_are_named(tmp_path, encrypted, capsys):
    enc, key = encrypted
    a, b = enc / "quote.hex", enc / "tokenizer" / "tokenizer.json"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "quote.hex: holds the ciphertext of tokenizer/tokenizer.json" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


def test_a_renamed_file_is_missing(tmp_path, encrypted, capsys):
    enc, key = encrypted
    (enc / "quote.hex").rename(enc / "quote.txt")
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "quote.hex: listed in the manifest but missing" in capsys.readouterr().err


def test_a_file_of_another_model_version_under_the_same_key_fails(tmp_path, model_dir, encrypted):
    enc, key = encrypted
    enc2 = tmp_path / "enc2"
    assert run("encrypt", model_dir, enc2, "--model", "llama", "--version", "v2", "--key", key) == 0
    (enc / "model.safetensors").write_bytes((enc2 / "model.safetensors").read_bytes())
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert_nothing_written(tmp_path / "out")


def test_truncation_leaves_no_partial_plaintext(tmp_path, encrypted, capsys):
    enc, key = encrypted
    weights = enc / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    out = tmp_path / "out"
    assert run("decrypt", enc, out, "--key", key) == 1
    err = capsys.readouterr().err
    assert "model.safetensors: segment 2 failed authentication" in err
    assert "the manifest's plaintext size means" in err
    assert_nothing_written(out)


def test_truncation_at_a_segment_boundary_is_caught_even_with_a_matching_manifest(
    tmp_path, encrypted, capsys
):
    enc, key = encrypted
    weights = enc / "model.safetensors"
    cut = weights.read_bytes()[: 2 * sa.CIPHERTEXT_SEGMENT_SIZE]
    weights.write_bytes(cut)
    doc = json.loads((enc / "manifest.json").read_text())
    for f in doc["files"]:
        if f["path"] == "model.safetensors":
            f["plaintext_size"] = 2 * sa.CIPHERTEXT_SEGMENT_SIZE - 40 - 32
    (enc / "manifest.json").write_text(json.dumps(doc))
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "ends after segment 1, which is not the last segment" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


def test_reordered_segments_are_refused(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(os.urandom(sa.FIRST_PLAINTEXT_SEGMENT_SIZE + 3 * 1000000))
    enc, key = tmp_path / "enc", tmp_path / "k"
    assert run("encrypt", src, enc, "--model", "m", "--key-out", key) == 0
    weights = enc / "weights.bin"
    data = weights.read_bytes()
    seg = sa.CIPHERTEXT_SEGMENT_SIZE
    s1, s2 = data[seg : 2 * seg], data[2 * seg : 3 * seg]
    weights.write_bytes(data[:seg] + s2 + s1 + data[3 * seg :])
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "weights.bin: segment 1 failed authentication" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


def test_a_manifest_size_that_disagrees_with_the_ciphertext_fails(tmp_path, encrypted, capsys):
    enc, key = encrypted
    doc = json.loads((enc / "manifest.json").read_text())
    for f in doc["files"]:
        if f["path"] == "quote.hex":
            f["plaintext_size"] += 1
    (enc / "manifest.json").write_text(json.dumps(doc))
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "quote.hex: decrypted to" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


def test_a_failing_later_file_removes_the_earlier_ones(tmp_path, encrypted):
    enc, key = encrypted
    weights = enc / "tokenizer" / "tokenizer.json"  # the last file in path order
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_bytes(b"someone else's")
    assert run("decrypt", enc, out, "--key", key) == 1
    assert tree(out) == {"keep.txt": b"someone else's"}


def test_decrypt_never_overwrites_an_existing_file(tmp_path, encrypted, capsys):
    enc, key = encrypted
    out = tmp_path / "out"
    out.mkdir()
    (out / "quote.hex").write_bytes(b"mine")
    assert run("decrypt", enc, out, "--key", key) == 2
    assert "already exists" in capsys.readouterr().err
    assert tree(out) == {"quote.hex": b"mine"}


def test_a_manifest_path_outside_out_dir_is_refused(tmp_path, encrypted, capsys):
    enc, key = encrypted
    doc = json.loads((enc / "manifest.json").read_text())
    doc["files"][0]["path"] = "../escape"
    (enc / "manifest.json").write_text(json.dumps(doc))
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 2
    assert "'..'" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists()


def test_a_key_file_of_the_wrong_size_is_unusable(tmp_path, encrypted, capsys):
    enc, _key = encrypted
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"0" * 64)
    assert run("decrypt", enc, tmp_path / "out", "--key", bad) == 2
    assert "holds 64 bytes" in capsys.readouterr().err


def test_verify_passes_a_signed_model_with_the_owner_key(tmp_path, model_dir, capsys):
    skey, vkey = owner_keys(tmp_path)
    enc = tmp_path / "enc"
    args = ("--model", "llama", "--version", "v1", "--key-out", tmp_path / "k", "--owner-key", skey)
    assert run("encrypt", model_dir, enc, *args) == 0
    capsys.readouterr()
    assert run("verify", enc, "--owner-vkey", vkey) == 0
    out = capsys.readouterr().out
    assert "pass  signature" in out
    assert manifest_digest(read_manifest(enc)) in out


def test_verify_without_owner_key_says_the_signature_was_not_checked(encrypted, capsys):
    enc, _key = encrypted
    assert run("verify", enc) == 0
    assert "skip  signature: unsigned" in capsys.readouterr().out


def test_verify_refuses_another_owner(tmp_path, model_dir, capsys):
    skey, _vkey = owner_keys(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _skey2, vkey2 = owner_keys(other)
    enc = tmp_path / "enc"
    args = ("--model", "llama", "--key-out", tmp_path / "k", "--owner-key", skey)
    assert run("encrypt", model_dir, enc, *args) == 0
    assert run("verify", enc, "--owner-vkey", vkey2) == 1
    assert "FAIL  signature" in capsys.readouterr().out


def test_verify_refuses_a_manifest_edited_after_signing(tmp_path, model_dir, capsys):
    skey, vkey = owner_keys(tmp_path)
    enc = tmp_path / "enc"
    args = ("--model", "llama", "--version", "v1", "--key-out", tmp_path / "k", "--owner-key", skey)
    assert run("encrypt", model_dir, enc, *args) == 0
    doc = json.loads((enc / "manifest.json").read_text())
    doc["version"] = "v0"
    (enc / "manifest.json").write_text(json.dumps(doc))
    assert run("verify", enc, "--owner-vkey", vkey) == 1
    assert "does not verify" in capsys.readouterr().out


def test_verify_refuses_an_unsigned_manifest_when_an_owner_key_is_given(
    tmp_path, encrypted, capsys
):
    enc, _key = encrypted
    _skey, vkey = owner_keys(tmp_path)
    assert run("verify", enc, "--owner-vkey", vkey) == 1
    assert "not signed" in capsys.readouterr().out


def test_verify_catches_a_modified_ciphertext(encrypted, capsys):
    enc, _key = encrypted
    f = enc / "quote.hex"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    assert run("verify", enc) == 1
    assert "FAIL  quote.hex: SHA-256" in capsys.readouterr().out


def test_verify_catches_a_truncated_and_a_missing_file(encrypted, capsys):
    enc, _key = encrypted
    (enc / "quote.hex").write_bytes((enc / "quote.hex").read_bytes()[:-1])
    (enc / "tokenizer" / "empty.txt").unlink()
    assert run("verify", enc) == 1
    out = capsys.readouterr().out
    assert "FAIL  quote.hex:" in out and "bytes, expected" in out
    assert "FAIL  tokenizer/empty.txt: cannot read" in out


def test_verify_flags_a_file_the_manifest_does_not_list(encrypted, capsys):
    enc, _key = encrypted
    (enc / "extra.bin").write_bytes(b"x")
    assert run("verify", enc) == 1
    assert "FAIL  extra.bin: not listed in the manifest" in capsys.readouterr().out


def test_verify_of_a_directory_without_manifest_is_unusable(tmp_path, capsys):
    assert run("verify", tmp_path) == 2
    assert "has no manifest.json" in capsys.readouterr().err


def test_encrypt_never_overwrites_a_key_file(tmp_path, model_dir, capsys):
    key = tmp_path / "k"
    key.write_bytes(b"old")
    assert run("encrypt", model_dir, tmp_path / "enc", "--model", "m", "--key-out", key) == 2
    assert "already exists" in capsys.readouterr().err
    assert key.read_bytes() == b"old"
    assert not (tmp_path / "enc").exists()


def test_encrypt_with_an_existing_key_reuses_it(tmp_path, model_dir, encrypted):
    enc, key = encrypted
    enc2 = tmp_path / "enc2"
    assert run("encrypt", model_dir, enc2, "--model", "llama", "--version", "v2", "--key", key) == 0
    assert read_manifest(enc2).key_id == read_manifest(enc).key_id


def test_encrypt_needs_a_key_out_or_a_key(tmp_path, model_dir, capsys):
    assert run("encrypt", model_dir, tmp_path / "enc", "--model", "m") == 2
    assert "--key-out" in capsys.readouterr().err


def test_encrypt_refuses_a_non_empty_out_dir(tmp_path, model_dir, capsys):
    out = tmp_path / "enc"
    out.mkdir()
    (out / "old").write_bytes(b"x")
    assert run("encrypt", model_dir, out, "--model", "m", "--key-out", tmp_path / "k") == 2
    assert "not empty" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()  # no key for a model that was not written


def test_encrypt_refuses_out_dir_inside_src_dir(tmp_path, model_dir, capsys):
    out = model_dir / "enc"
    assert run("encrypt", model_dir, out, "--model", "m", "--key-out", tmp_path / "k") == 2
    assert "overlap" in capsys.readouterr().err


def test_encrypt_refuses_a_model_name_with_a_newline(tmp_path, model_dir, capsys):
    assert (
        run("encrypt", model_dir, tmp_path / "e", "--model", "a\nb", "--key-out", tmp_path / "k")
        == 2
    )
    assert "control character" in capsys.readouterr().err


def test_encrypt_refuses_a_source_manifest_json(tmp_path, model_dir, capsys):
    (model_dir / "manifest.json").write_text("{}")
    assert (
        run("encrypt", model_dir, tmp_path / "e", "--model", "m", "--key-out", tmp_path / "k") == 2
    )
    assert "manifest's name" in capsys.readouterr().err


def test_encrypt_refuses_a_special_file_and_leaves_nothing(tmp_path, model_dir, capsys):
    os.mkfifo(model_dir / "pipe")
    enc = tmp_path / "enc"
    assert run("encrypt", model_dir, enc, "--model", "m", "--key-out", tmp_path / "k") == 2
    assert "not a regular file" in capsys.readouterr().err
    assert not enc.exists() and not (tmp_path / "k").exists()


def test_encrypt_follows_file_symlinks(tmp_path, model_dir, encrypted):
    blob = tmp_path / "blob"
    blob.write_bytes(b"weights behind a symlink")
    (model_dir / "linked.bin").symlink_to(blob)
    enc = tmp_path / "enc3"
    assert run("encrypt", model_dir, enc, "--model", "m", "--key-out", tmp_path / "k3") == 0
    assert (
        parse_manifest((enc / "manifest.json").read_bytes()).file("linked.bin").plaintext_size == 24
    )


def test_default_version_is_the_utc_time(tmp_path, model_dir):
    enc = tmp_path / "enc"
    assert run("encrypt", model_dir, enc, "--model", "m", "--key-out", tmp_path / "k") == 0
    version = read_manifest(enc).version
    assert len(version) == 16 and version.endswith("Z") and version[8] == "T"


def test_decrypt_does_not_follow_a_symlinked_directory_out_of_out_dir(tmp_path, encrypted, capsys):
    enc, key = encrypted
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "tokenizer").symlink_to(elsewhere)
    assert run("decrypt", enc, out, "--key", key) == 2
    assert "leads outside" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer"]


def test_a_fifo_at_a_listed_name_is_refused_without_hanging(tmp_path, encrypted, capsys):
    enc, key = encrypted
    (enc / "quote.hex").unlink()
    os.mkfifo(enc / "quote.hex")
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "is not a regular file" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")
    assert run("verify", enc) == 1
    assert "FAIL  quote.hex:" in capsys.readouterr().out


def test_a_directory_at_a_listed_name_is_refused(tmp_path, encrypted, capsys):
    enc, key = encrypted
    (enc / "quote.hex").unlink()
    (enc / "quote.hex").mkdir()
    assert run("decrypt", enc, tmp_path / "out", "--key", key) == 1
    assert "is not a regular file" in capsys.readouterr().err


def test_an_owner_key_that_is_not_ed25519_is_unusable(tmp_path, model_dir, capsys):
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = tmp_path / "p256.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    args = ("--model", "m", "--key-out", tmp_path / "k", "--owner-key", pem)
    assert run("encrypt", model_dir, tmp_path / "enc", *args) == 2
    assert "is not an Ed25519 key" in capsys.readouterr().err
    assert not (tmp_path / "k").exists() and not (tmp_path / "enc").exists()


def test_an_owner_vkey_that_is_not_pem_is_unusable(tmp_path, encrypted, capsys):
    enc, _key = encrypted
    bad = tmp_path / "vkey"
    bad.write_bytes(os.urandom(32))
    assert run("verify", enc, "--owner-vkey", bad) == 2
    assert "is not a PEM public key" in capsys.readouterr().err
