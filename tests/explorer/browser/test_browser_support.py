"""The browser tests' own tree and note helpers agree with the published vectors.

They build every test page of test_browser_verify_js.py, so they are pinned to the RFC 6962
reference tree and the Go sumdb signed-note signature (tests/data/tlog/README.md).
"""

import base64
import json

from browser_support import TLOG_DATA, NoteKey, audit_path, leaf_hash, mth
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def test_tree_helpers_reproduce_the_rfc6962_reference_tree():
    ref = json.loads((TLOG_DATA / "rfc6962_reference.json").read_text())["reference_tree"]
    leaves = [leaf_hash(bytes.fromhex(x)) for x in ref["leaf_inputs_hex"]]
    for n, want in enumerate(ref["root_hash_by_size"]):
        assert mth(leaves[:n]).hex() == want
    for case in ref["inclusion_proofs"]:
        got = [h.hex() for h in audit_path(case["index"], leaves[: case["size"]])]
        assert got == case["proof"]


def test_note_key_reproduces_the_go_sumdb_signature_byte_for_byte():
    vectors = json.loads((TLOG_DATA / "signed_note.json").read_text())
    skey = vectors["keys"]["PeterNeumann"]["skey"]
    seed = base64.b64decode(skey.split("+", 4)[4])[1:]
    key = NoteKey("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))
    assert key.vkey == vectors["keys"]["PeterNeumann"]["vkey"]
    case = vectors["sign_vectors"][0]
    assert key.sign(case["text"]) == case["want_note"]
