"""c2sp.org/tlog-witness add-checkpoint: every status code, persistence, fork refusal, and the
Sunlight cosignature vectors (tests/data/tlog/tiles_cosigned_300.json)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

import pytest
from teelog.log.checkpoint import open_checkpoint
from teelog.log.merkle import consistency_proof
from teelog.log.note import Ed25519Signer, open_note, parse_vkey
from teelog.witness.config import WitnessConfigError, WitnessedLog, parse_witness_config
from teelog.witness.cosigner import CosignatureSigner
from teelog.witness.protocol import RequestError, Witness, parse_add_checkpoint
from teelog.witness.state import origin_hash
from witness_helpers import FakeLog

DATA = Path(__file__).resolve().parents[1] / "data" / "tlog"
TILES = json.loads((DATA / "tiles_cosigned_300.json").read_text())
ORIGIN = "example.org/witnessed"
NOW = 1_767_139_200


@pytest.fixture
def log_signer():
    return Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def witness(tmp_path, log_signer):
    signer = CosignatureSigner.generate("witness.test/w1")
    logs = {ORIGIN: WitnessedLog(ORIGIN, log_signer.verifier)}
    return Witness(signer, logs, tmp_path / "w1", clock=lambda: NOW)


def test_first_checkpoint_is_cosigned_and_the_cosignature_verifies(witness, log_signer):
    log = FakeLog(log_signer)
    log.grow(5)
    reply = witness.add_checkpoint(log.body(0))
    assert reply.status == 200, reply.body
    assert reply.body.startswith("\u2014 witness.test/w1 ") and reply.body.endswith("\n")
    cp = open_checkpoint(
        log.note() + reply.body, log_signer.verifier,
        witnesses=[witness.signer.verifier], quorum=1,
    )
    assert cp.size == 5 and cp.cosignatures[0].timestamp == NOW


def test_consistent_growth_is_cosigned_and_persisted(witness, log_signer, tmp_path):
    log = FakeLog(log_signer)
    log.grow(3)
    assert witness.add_checkpoint(log.body(0)).status == 200
    log.grow(10)
    assert witness.add_checkpoint(log.body(3)).status == 200
    # a fresh process on the same directory remembers size 13
    again = Witness(witness.signer, witness.logs, tmp_path / "w1", clock=lambda: NOW)
    assert again.state.latest(ORIGIN).size == 13
    stale = again.add_checkpoint(log.body(3))
    assert (stale.status, stale.body, stale.content_type) == (409, "13\n", "text/x.tlog.size")


def test_unknown_origin_is_404(witness):
    other = FakeLog(Ed25519Signer.generate("other.example/log"))
    other.grow(1)
    assert witness.add_checkpoint(other.body(0)).status == 404


def test_checkpoint_not_signed_by_the_configured_key_is_403(witness):
    impostor = FakeLog(Ed25519Signer.generate(ORIGIN))  # same origin, another key
    impostor.grow(2)
    assert witness.add_checkpoint(impostor.body(0)).status == 403
    assert witness.state.latest(ORIGIN) is None


def test_stale_old_size_is_409_with_the_witness_size(witness, log_signer):
    log = FakeLog(log_signer)
    log.grow(4)
    assert witness.add_checkpoint(log.body(0)).status == 200
    log.grow(4)
    reply = witness.add_checkpoint(log.body(0))  # client forgot what the witness has
    assert (reply.status, reply.body, reply.content_type) == (409, "4\n", "text/x.tlog.size")
    assert witness.add_checkpoint(log.body(4)).status == 200  # the 409 recovery


def test_bad_consistency_proof_is_422_and_nothing_is_stored(witness, log_signer):
    log = FakeLog(log_signer)
    log.grow(4)
    witness.add_checkpoint(log.body(0))
    log.grow(3)
    body = log.body(4).replace(
        base64.b64encode(consistency_proof(log.tree, 4, 7)[0]).decode().encode(),
        base64.b64encode(b"\x00" * 32).decode().encode(),
    )
    assert witness.add_checkpoint(body).status == 422
    assert witness.state.latest(ORIGIN).size == 4


def test_forked_log_is_refused_with_409_or_422(witness, log_signer):
    honest, fork = FakeLog(log_signer), FakeLog(log_signer, tag=b" forked")
    honest.grow(6)
    fork.grow(6)
    assert witness.add_checkpoint(honest.body(0)).status == 200
    # same size, another root: 409; larger with a proof from the fork's own history: 422
    assert witness.add_checkpoint(fork.body(6)).status == 409
    fork.grow(4)
    assert witness.add_checkpoint(fork.body(6)).status == 422
    assert witness.state.latest(ORIGIN).root == honest.tree.root()


def test_old_size_above_checkpoint_size_and_malformed_bodies_are_400(witness, log_signer):
    log = FakeLog(log_signer)
    log.grow(2)
    assert witness.add_checkpoint(f"old 3\n\n{log.note()}".encode()).status == 400
    for bad in (b"", b"old 01\n\n" + log.note().encode(), b"new 0\n\n" + log.note().encode(),
                b"old 0\n" + log.note().encode(), b"old 0\nnot base64!\n\n" + log.note().encode()):
        assert witness.add_checkpoint(bad).status == 400, bad[:20]


def test_nonempty_proof_from_old_zero_is_422(witness, log_signer):
    log = FakeLog(log_signer)
    log.grow(2)
    body = b"old 0\n" + base64.b64encode(b"\x01" * 32) + b"\n\n" + log.note().encode()
    assert witness.add_checkpoint(body).status == 422


def test_parse_rejects_more_than_63_proof_lines():
    line = base64.b64encode(b"\x00" * 32).decode()
    with pytest.raises(RequestError, match="63"):
        parse_add_checkpoint(("old 1\n" + (line + "\n") * 64 + "\nx").encode())


def test_latest_view_is_served_by_origin_hash(witness, log_signer):
    log = FakeLog(log_signer)
    assert witness.latest_note(origin_hash(ORIGIN)) is None
    log.grow(2)
    witness.add_checkpoint(log.body(0))
    note = witness.latest_note(origin_hash(ORIGIN))
    opened = open_note(note, [log_signer.verifier, witness.signer.verifier])
    assert len(opened.verified) == 2
    assert witness.latest_note("00" * 32) is None


def test_config_requires_a_log_key_and_unique_origins(log_signer):
    vkey = log_signer.vkey
    logs = parse_witness_config(f'[[logs]]\norigin = "{ORIGIN}"\nvkey = "{vkey}"\n')
    assert logs[ORIGIN].key == log_signer.verifier
    with pytest.raises(WitnessConfigError, match="listed twice"):
        parse_witness_config(f'[[logs]]\norigin = "a"\nvkey = "{vkey}"\n' * 2)
    wvkey = CosignatureSigner.generate("w").vkey
    with pytest.raises(WitnessConfigError, match="type 0x01"):
        parse_witness_config(f'[[logs]]\norigin = "a"\nvkey = "{wvkey}"\n')
    with pytest.raises(WitnessConfigError, match="not valid TOML"):
        parse_witness_config("[[logs]\n")


def test_cosigner_key_text_round_trips_and_rejects_a_wrong_id():
    signer = CosignatureSigner.generate("witness.test/w1")
    assert CosignatureSigner.from_skey(signer.skey) == signer
    assert parse_vkey(signer.vkey) == signer.verifier
    bad = signer.skey.replace(f"+{signer.verifier.key_id:08x}+", "+00000000+")
    with pytest.raises(ValueError, match="does not match"):
        CosignatureSigner.from_skey(bad)


# --- Sunlight (skylight) cosignature vectors --------------------------------------------------


def _sunlight_signer(name: str) -> CosignatureSigner:
    label = {"mirror.example.org": b"skylight test mirror key",
             "witness.example.org": b"skylight test witness key",
             "witness2.example.org": b"skylight test witness2 key"}[name]
    return CosignatureSigner(name, hashlib.sha256(label).digest())


@pytest.mark.parametrize(
    "name, checkpoint",
    [
        ("mirror.example.org", "mirror_real_tree"),
        ("witness.example.org", "witness_fake_root"),
        ("witness2.example.org", "witness2_fake_root_other_origin"),
    ],
)
def test_cosigner_reproduces_the_sunlight_cosignatures(name, checkpoint):
    signer = _sunlight_signer(name)
    assert signer.vkey == TILES["cosigners"][name]["vkey"]
    note = TILES["checkpoints"][checkpoint]
    body = note[: note.index("\n\n") + 1]
    line = signer.cosign(body, TILES["cosignature_timestamp"]).line()
    assert line in note  # Ed25519 is deterministic: byte-for-byte the vector's line


def test_witnesses_the_sunlight_300_entry_log(tmp_path):
    """Any C2SP log: the skylight tree of 300 'record i' entries, grown from 100 to 300."""
    log_signer = Ed25519Signer.generate(TILES["origin"])
    tree = FakeLog(log_signer)
    for i in range(TILES["entries"]["count"]):
        tree.tree.append(b"record %d" % i)
    assert base64.b64encode(tree.tree.root()).decode() == TILES["expected"]["mirror_root_b64"]
    w = Witness(_sunlight_signer("witness.example.org"),
                {TILES["origin"]: WitnessedLog(TILES["origin"], log_signer.verifier)},
                tmp_path, clock=lambda: TILES["cosignature_timestamp"])
    assert w.add_checkpoint(tree.body(0, 100)).status == 200
    reply = w.add_checkpoint(tree.body(100, 300))
    assert reply.status == 200
    sig = base64.b64decode(reply.body.split(" ")[2])
    assert struct.unpack(">Q", sig[4:12])[0] == TILES["cosignature_timestamp"]
    assert origin_hash(TILES["origin"]) == TILES["origin_sha256_hex"]
