"""RFC 9162 hashing and proofs against every Merkle vector in tests/data/tlog/."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_naive import naive_path, naive_subproof  # tests/log/log_naive.py
from teelog.log.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    consistency_proof,
    hashes_of_ranges,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
    range_nodes,
    root,
    subtree_consistency_ranges,
    verify_consistency,
    verify_inclusion,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "tlog"
REF = json.loads((DATA / "rfc6962_reference.json").read_text())
TREE = REF["reference_tree"]
LEAVES = [bytes.fromhex(x) for x in TREE["leaf_inputs_hex"]]


def b64(x: str | None) -> bytes:
    return base64.b64decode(x) if x else b""


@pytest.mark.parametrize("vector", REF["hasher_vectors"], ids=lambda v: v["desc"])
def test_hasher_vectors(vector):
    if vector["kind"] == "empty_root":
        got = EMPTY_ROOT
    elif vector["kind"] == "leaf":
        got = leaf_hash(bytes.fromhex(vector["data_hex"]))
    else:
        got = node_hash(bytes.fromhex(vector["left_hex"]), bytes.fromhex(vector["right_hex"]))
    assert got.hex() == vector["want"]


def test_reference_tree_every_node_and_root():
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    for level, row in enumerate(TREE["node_hashes_by_level"]):
        for i, want in enumerate(row):
            assert tree.nodes([(level, i)])[0].hex() == want
            assert mth([leaf_hash(x) for x in LEAVES[i << level : (i + 1) << level]]).hex() == want
    for n, want in enumerate(TREE["root_hash_by_size"]):
        assert tree.root(n).hex() == want
        assert mth([leaf_hash(x) for x in LEAVES[:n]]).hex() == want


@pytest.mark.parametrize(
    "case", TREE["inclusion_proofs"], ids=lambda c: f"{c['index']}@{c['size']}"
)
def test_reference_inclusion_proofs_generated_and_verified(case):
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    proof = inclusion_proof(tree, case["index"], case["size"])
    assert [p.hex() for p in proof] == case["proof"]
    root_hash = bytes.fromhex(TREE["root_hash_by_size"][case["size"]])
    verify_inclusion(
        case["index"], case["size"], leaf_hash(LEAVES[case["index"]]), proof, root_hash
    )


@pytest.mark.parametrize(
    "case", TREE["consistency_proofs"], ids=lambda c: f"{c['size1']}-{c['size2']}"
)
def test_reference_consistency_proofs_generated_and_verified(case):
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    proof = consistency_proof(tree, case["size1"], case["size2"])
    assert [p.hex() for p in proof] == case["proof"]
    roots = TREE["root_hash_by_size"]
    verify_consistency(
        case["size1"],
        case["size2"],
        proof,
        bytes.fromhex(roots[case["size1"]]),
        bytes.fromhex(roots[case["size2"]]),
    )


INCLUSION_PROBES = json.loads((DATA / "merkle_inclusion_probes.json").read_text())["probes"]
CONSISTENCY_PROBES = json.loads((DATA / "merkle_consistency_probes.json").read_text())["probes"]


@pytest.mark.parametrize("probe", INCLUSION_PROBES, ids=lambda p: p["source"])
def test_inclusion_probe_accepted_iff_upstream_accepts(probe):
    args = (
        probe["leafIdx"],
        probe["treeSize"],
        b64(probe["leafHash"]),
        [b64(p) for p in probe["proof"] or []],
        b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("probe", CONSISTENCY_PROBES, ids=lambda p: p["source"])
def test_consistency_probe_accepted_iff_upstream_accepts(probe):
    args = (
        probe["size1"],
        probe["size2"],
        [b64(p) for p in probe["proof"] or []],
        b64(probe["root1"]),
        b64(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# --- accumulated vectors (draft-ietf-plants-merkle-tree-certs appendix) ---------------------------

ACCUMULATED = {
    v["name"]: v["want_sha256"]
    for v in json.loads((DATA / "accumulated_vectors.json").read_text())["vectors"]
}
D = [bytes([i]) for i in range(130)]
D_HASHES = [leaf_hash(x) for x in D]


def _valid_subtree(start: int, end: int) -> bool:
    if start > end:
        return False
    if start == 0 or start == end:
        return True
    width = 1 << (end - start - 1).bit_length()  # bit_ceil(end - start)
    return start % width == 0


def test_accumulated_subtree_hashes():
    acc = hashlib.sha256()
    for end in range(131):
        for start in range(end + 1):
            if _valid_subtree(start, end):
                acc.update(f"[{start}, {end}) {mth(D_HASHES[start:end]).hex()}\n".encode())
    assert acc.hexdigest() == ACCUMULATED["subtree_hash"]


def test_accumulated_subtree_inclusion_proofs():
    acc = hashlib.sha256()
    for end in range(131):
        for start in range(end + 1):
            if not _valid_subtree(start, end):
                continue
            sub = MemoryTree(D_HASHES[start:end])
            for index in range(start, end):
                proof = inclusion_proof(sub, index - start, end - start)
                line = f"{index} [{start}, {end})" + "".join(" " + p.hex() for p in proof)
                acc.update((line + "\n").encode())
    assert acc.hexdigest() == ACCUMULATED["subtree_inclusion_proof"]


def test_accumulated_subtree_consistency_proofs():
    tree = MemoryTree(D_HASHES)
    acc = hashlib.sha256()
    for n in range(131):
        for end in range(n + 1):
            for start in range(end + 1):
                if not _valid_subtree(start, end):
                    continue
                proof = hashes_of_ranges(tree, subtree_consistency_ranges(start, end, n))
                line = f"[{start}, {end}) {n}" + "".join(" " + p.hex() for p in proof)
                acc.update((line + "\n").encode())
    assert acc.hexdigest() == ACCUMULATED["subtree_consistency_proof"]


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_stored_tree_proofs_equal_naive_recomputation(size, data):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MemoryTree(leaves)
    assert root(tree, size) == mth(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index, size)
    assert proof == naive_path(index, leaves)
    verify_inclusion(index, size, leaves[index], proof, mth(leaves))
    size1 = data.draw(st.integers(1, size))
    cproof = consistency_proof(tree, size1, size)
    assert cproof == naive_subproof(size1, leaves, True)
    verify_consistency(size1, size, cproof, mth(leaves[:size1]), mth(leaves))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 2000), st.data())
def test_tampered_proofs_are_rejected(size, data):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MemoryTree(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index, size)
    good_root = mth(leaves)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"not in the log"), proof, good_root)
    if proof:
        bad = list(proof)
        j = data.draw(st.integers(0, len(bad) - 1))
        bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaves[index], bad, good_root)
    size1 = data.draw(st.integers(1, size - 1))
    cproof = consistency_proof(tree, size1, size)
    forked = mth([*leaves[: size1 - 1], leaf_hash(b"fork")])
    with pytest.raises(ProofError):
        verify_consistency(size1, size, cproof, forked, good_root)


def test_range_nodes_rejects_ranges_that_are_not_subtrees():
    assert range_nodes(8, 13) == [(2, 2), (0, 12)]
    with pytest.raises(ValueError, match="not an RFC 9162 subtree"):
        range_nodes(3, 7)


def test_proofs_for_trees_that_do_not_exist_are_refused():
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    with pytest.raises(ProofError, match="not in a tree of size 8"):
        inclusion_proof(tree, 8, 8)
    with pytest.raises(ProofError, match="from size 5 to size 3"):
        consistency_proof(tree, 5, 3)
    with pytest.raises(ProofError, match="from size 0"):
        consistency_proof(tree, 0, 3)
