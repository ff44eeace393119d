"""Signed notes, checkpoints and cosignatures: signed_note.json, tiles_cosigned_300.json."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from teelog.log.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    parse_checkpoint,
    parse_checkpoint_body,
)
from teelog.log.note import (
    ALG_COSIGNATURE_V1,
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    Signature,
    cosignature_message,
    key_id,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "tlog"
NOTES = json.loads((DATA / "signed_note.json").read_text())
TILES = json.loads((DATA / "tiles_cosigned_300.json").read_text())
REF = json.loads((DATA / "rfc6962_reference.json").read_text())


@pytest.mark.parametrize("name", sorted(NOTES["keys"]))
def test_vkeys_parse_and_key_id_is_derived_from_the_key(name):
    key = NOTES["keys"][name]
    v = parse_vkey(key["vkey"])
    assert isinstance(v, Ed25519Verifier)
    assert v.name == name
    assert f"{v.key_id:08x}" == key["key_id_hex"]
    assert v.key_id == key_id(name, 0x01, v.public_key)
    assert v.vkey == key["vkey"]


@pytest.mark.parametrize("case", NOTES["vkey_negative"], ids=lambda c: c["desc"])
def test_bad_vkeys_are_rejected(case):
    with pytest.raises(NoteError):
        parse_vkey(case["vkey"])


@pytest.mark.parametrize(
    "vkey, message",
    [
        ("PeterNeumann+c74f20a3", "must be <name>"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+!!!!", "base64"),
    ],
)
def test_malformed_vkeys_say_what_is_wrong(vkey, message):
    with pytest.raises(NoteError, match=message):
        parse_vkey(vkey)


@pytest.mark.parametrize("vector", NOTES["sign_vectors"], ids=lambda v: v["desc"])
def test_signing_reproduces_the_reference_note_byte_for_byte(vector):
    key = NOTES["keys"][vector["signer"]]
    signer = Ed25519Signer.from_skey(key["skey"])
    assert signer.vkey == key["vkey"]
    assert signer.skey == key["skey"]
    assert sign_note(vector["text"], signer) == vector["want_note"]


@pytest.mark.parametrize("vector", NOTES["open_vectors"], ids=lambda v: v["desc"])
def test_open_vectors(vector):
    verifiers = [parse_vkey(NOTES["keys"][n]["vkey"]) for n in vector["trusted"]]
    if vector["want"] == "error":
        with pytest.raises(NoteError):
            open_note(vector["note"], verifiers)
        return
    opened = open_note(vector["note"], verifiers)
    assert [s.name for s in opened.verified] == vector["want_verified"]
    assert [s.name for s in opened.unverified] == vector["want_unverified"]


@pytest.mark.parametrize("case", NOTES["parse_only_examples"], ids=lambda c: c["desc"])
def test_checkpoint_example_parses(case):
    cp = parse_checkpoint(case["note"])
    assert (cp.origin, cp.size) == (case["want_origin"], case["want_size"])
    assert base64.b64encode(cp.root).decode() == case["want_root_b64"]


def test_go_sumdb_tree_note_body_parses():
    note = REF["go_sumdb_tree_note"]
    cp = parse_checkpoint_body(note["text"])
    assert cp.origin == "go.sum database tree"
    assert cp.size == note["tree_size"]
    assert cp.root == hashlib.sha256(b"\x00hello world").digest()
    assert cp.body == note["text"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("example.org\n10\n", "origin, a size and a root"),
        ("example.org\n010\n" + "A" * 43 + "=\n", "leading zeros"),
        ("example.org\n-1\n" + "A" * 43 + "=\n", "decimal"),
        ("example.org\n10\nAAAA\n", "not 32"),
        ("example.org\n10\n" + "A" * 43 + "=", "end in a newline"),
        ("\n10\n" + "A" * 43 + "=\n", "origin line is empty"),
        ("example.org\n10\n" + "A" * 43 + "=\n\n", "extension lines"),
    ],
)
def test_malformed_checkpoint_bodies_are_rejected(text, message):
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint_body(text)


def test_note_syntax_errors_are_rejected():
    signer = Ed25519Signer.generate("example.org/log")
    good = sign_note("hello\n", signer)
    parse_note(good)
    for bad in [
        good.replace("\u2014", "-"),  # not an em dash
        good[:-1],  # no final newline
        good + "\u2014 x\n",  # signature without base64
        good.replace("hello", "hel\tlo"),  # control character
        "hello\n\n",  # no signatures
        good + "\u2014 other AAAA\n",  # signature too short
    ]:
        with pytest.raises(NoteError):
            parse_note(bad)
    with pytest.raises(NoteError):
        parse_note(b"hello\n\n\xff\n")


def test_wrong_key_does_not_open_our_note():
    signer = Ed25519Signer.generate("example.org/log")
    other = Ed25519Signer.generate("example.org/log")  # same name, different key and ID
    note = sign_note("hello\n", signer)
    open_note(note, [signer.verifier])
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(note, [other.verifier])
    # A forged line with our name and key ID but a signature by another key is rejected.
    forged = Signature(signer.name, signer.key_id, other.sign(b"hello\n")).line()
    with pytest.raises(NoteError, match="does not verify"):
        open_note("hello\n\n" + forged, [signer.verifier])


def test_signer_key_round_trips_and_rejects_bad_skeys():
    signer = Ed25519Signer.generate("teelog.example/log")
    again = Ed25519Signer.from_skey(signer.skey)
    assert again.vkey == signer.vkey
    with pytest.raises(NoteError, match="does not match"):
        Ed25519Signer.from_skey(signer.skey.replace(f"+{signer.key_id:08x}+", "+00000000+"))
    with pytest.raises(NoteError):
        Ed25519Signer.from_skey("PRIVATE+KEY+x+00000000+AAAA")
    with pytest.raises(NoteError, match="invalid key name"):
        Ed25519Signer.generate("bad name")


def test_our_checkpoints_sign_and_open_with_the_log_key():
    signer = Ed25519Signer.generate("teelog.example/log")
    cp = Checkpoint("teelog.example/log", 5, b"\x07" * 32).sign(signer)
    opened = open_checkpoint(cp.note, signer.verifier)
    assert (opened.origin, opened.size, opened.root) == (cp.origin, 5, b"\x07" * 32)
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(cp.note, signer.verifier, origin="elsewhere.example/log")
    other = Ed25519Signer.generate("teelog.example/log")
    with pytest.raises(CheckpointError, match="signature"):
        open_checkpoint(cp.note, other.verifier)


# --- cosignatures (Sunlight skylight testdata) -------------------------------------------------


def _cosigner(name: str) -> CosignatureVerifier:
    v = parse_vkey(TILES["cosigners"][name]["vkey"])
    assert isinstance(v, CosignatureVerifier)
    return v


@pytest.mark.parametrize(
    "name, checkpoint",
    [
        ("mirror.example.org", "mirror_real_tree"),
        ("witness.example.org", "witness_fake_root"),
        ("witness2.example.org", "witness2_fake_root_other_origin"),
    ],
)
def test_cosignatures_verify_and_unknown_signature_types_are_ignored(name, checkpoint):
    opened = open_note(TILES["checkpoints"][checkpoint], [_cosigner(name)])
    assert [s.name for s in opened.verified] == [name]
    (sig,) = opened.verified
    assert struct.unpack(">Q", sig.sig[:8])[0] == TILES["cosignature_timestamp"]
    if checkpoint == "witness_fake_root":
        assert [s.name for s in opened.unverified] == [TILES["origin"]]


def test_cosigner_keys_do_not_verify_checkpoints_they_did_not_sign():
    note = TILES["checkpoints"]["mirror_real_tree"]
    with pytest.raises(NoteError):
        open_note(note, [_cosigner("witness.example.org")])
    # Same name and key ID as the mirror, but a checkpoint body it did not sign.
    tampered = note.replace("\n300\n", "\n301\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_note(tampered, [_cosigner("mirror.example.org")])


@pytest.mark.parametrize(
    "name, checkpoint, seed",
    [
        ("mirror.example.org", "mirror_real_tree", "skylight test mirror key"),
        ("witness.example.org", "witness_fake_root", "skylight test witness key"),
        ("witness2.example.org", "witness2_fake_root_other_origin", "skylight test witness2 key"),
    ],
)
def test_cosignatures_regenerate_from_published_seeds(name, checkpoint, seed):
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    note = TILES["checkpoints"][checkpoint]
    text = parse_note(note).text.encode()
    ts = TILES["cosignature_timestamp"]
    sig = key.sign(cosignature_message(text, ts))
    v = _cosigner(name)
    assert v.public_key == key.public_key().public_bytes_raw()
    assert v.key_id == key_id(name, ALG_COSIGNATURE_V1, v.public_key)
    line = Signature(name, v.key_id, struct.pack(">Q", ts) + sig).line()
    assert line in note


def test_checkpoint_witness_policy_counts_only_valid_cosignatures():
    log = Ed25519Signer.generate(TILES["origin"])
    body = parse_note(TILES["checkpoints"]["mirror_real_tree"]).text
    note = sign_note(body, log)
    # Append the mirror's real cosignature of the same body.
    mirror_line = TILES["checkpoints"]["mirror_real_tree"].split("\n\n", 1)[1]
    cosigned = note + mirror_line
    cp = open_checkpoint(
        cosigned, log.verifier, witnesses=[_cosigner("mirror.example.org")], quorum=1
    )
    assert [c.name for c in cp.cosignatures] == ["mirror.example.org"]
    assert cp.cosignatures[0].timestamp == TILES["cosignature_timestamp"]
    with pytest.raises(CheckpointError, match="policy needs 2"):
        open_checkpoint(
            cosigned,
            log.verifier,
            witnesses=[_cosigner("mirror.example.org"), _cosigner("witness.example.org")],
            quorum=2,
        )
