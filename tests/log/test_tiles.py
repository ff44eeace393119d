"""tlog-tiles paths, tiles and bundles: tile_layout.json, tiles_cosigned_300.json, properties."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from teelog.log.merkle import (
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
)
from teelog.log.tiles import (
    BundleBuilder,
    EntryTooLarge,
    TileAddress,
    TileBuilder,
    TileError,
    TileReader,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    partial_width,
    tile_path,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "tlog"
LAYOUT = json.loads((DATA / "tile_layout.json").read_text())
TILES = json.loads((DATA / "tiles_cosigned_300.json").read_text())


@pytest.mark.parametrize("case", LAYOUT["index_path_encoding"], ids=lambda c: str(c["n"]))
def test_index_path_encoding(case):
    assert encode_index(case["n"]) == case["want"]
    assert parse_tile_path(f"tile/0/{case['want']}").n == case["n"]


@pytest.mark.parametrize("case", LAYOUT["tree_size_tiles"], ids=lambda c: str(c["tree_size"]))
def test_tile_counts_and_partial_widths(case):
    size, want = case["tree_size"], case["want"]
    assert size >> 8 == want["level0_full"]
    assert (partial_width(size, 0) or None) == want["level0_partial_width"]
    assert size >> 16 == want["level1_full"]
    assert (partial_width(size, 1) or None) == want["level1_partial_width"]
    if "level2_partial_width" in want:
        assert partial_width(size, 2) == want["level2_partial_width"]


@pytest.mark.parametrize(
    "path, want",
    [
        ("tile/0/000", TileAddress(0, 0, 256)),
        ("tile/3/x001/x234/067.p/8", TileAddress(3, 1234067, 8)),
        ("tile/entries/x001/000", TileAddress(None, 1000, 256)),
        ("tile/entries/999.p/255", TileAddress(None, 999, 255)),
        ("tile/63/000.p/1", TileAddress(63, 0, 1)),
    ],
)
def test_tile_paths_parse_and_round_trip(path, want):
    assert parse_tile_path(path) == want
    assert want.path == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/0",  # not 3 digits
        "tile/0/1000",
        "tile/00/000",  # leading zero level
        "tile/64/000",  # level too high
        "tile/0/001/002",  # missing x prefix
        "tile/0/x001",  # x on the last group
        "tile/0/x000/001",  # redundant leading group
        "tile/0/000.p/0",  # empty partial
        "tile/0/000.p/256",  # width too large
        "tile/0/000.p/012",  # leading zero width
        "tile/0/000.p/",
        "tile/data/000",
        "tile/entries/000/",
        "tile/-1/000",
        "tile/0/٠٠٠",  # non-ASCII digits
        "../tile/0/000",
    ],
)
def test_malformed_tile_paths_are_rejected(path):
    with pytest.raises(TileError):
        parse_tile_path(path)


def _records(n: int) -> list[bytes]:
    return [f"record {i}".encode() for i in range(n)]


def test_builder_reproduces_the_sunlight_300_entry_tiles_and_root():
    builder = TileBuilder()
    writes = {w.path: w.data for w in builder.append([leaf_hash(e) for e in _records(300)])}
    for path, hexdata in TILES["tiles_hex"].items():
        assert writes[path].hex() == hexdata, path
    assert set(writes) == set(TILES["tiles_hex"])
    want_root = base64.b64decode(TILES["expected"]["mirror_root_b64"])
    assert builder.root() == want_root
    assert mth([leaf_hash(e) for e in _records(300)]) == want_root
    cp_root_line = TILES["checkpoints"]["mirror_real_tree"].split("\n")[2]
    assert base64.b64decode(cp_root_line) == want_root


def test_fixture_tiles_are_leaf_hashes_and_level1_is_the_first_tile_root():
    leaves = [leaf_hash(e) for e in _records(300)]
    tiles = {k: bytes.fromhex(v) for k, v in TILES["tiles_hex"].items()}
    assert tiles["tile/0/000"] == b"".join(leaves[:256])
    assert tiles["tile/0/001.p/44"] == b"".join(leaves[256:300])
    assert tiles["tile/1/000.p/1"] == mth(leaves[:256])


def test_reader_computes_root_and_proofs_from_the_fixture_tiles_alone():
    tiles = {k: bytes.fromhex(v) for k, v in TILES["tiles_hex"].items()}
    reader = TileReader(lambda p: tiles[p], 300)
    want_root = base64.b64decode(TILES["expected"]["mirror_root_b64"])
    assert reader.root() == want_root
    level1 = tiles["tile/1/000.p/1"]
    assert node_hash(level1, mth([leaf_hash(e) for e in _records(300)[256:]])) == want_root
    tree = MemoryTree(leaf_hash(e) for e in _records(300))
    for index in (0, 1, 255, 256, 299):
        assert reader.inclusion_proof(index) == _proof(tree, index, 300)
    with pytest.raises(TileError, match=r"tile/1/000\.p/2"):
        TileReader(lambda p: tiles[p], 512).root()


def test_reader_rejects_tiles_and_bundles_of_the_wrong_length():
    tiles = {k: bytes.fromhex(v) for k, v in TILES["tiles_hex"].items()}
    tiles["tile/0/001.p/44"] += b"\x00" * 32  # one hash too many for width 44
    with pytest.raises(TileError, match=r"tile/0/001\.p/44 has 1440 bytes, not 1408"):
        TileReader(lambda p: tiles[p], 300).tile(0, 1)
    bundles = {"tile/entries/000.p/3": encode_bundle([b"a", b"b"])}
    with pytest.raises(TileError, match="has 2 entries, not 3"):
        TileReader(lambda p: bundles[p], 3).bundle(0)


def _proof(tree: MemoryTree, index: int, size: int) -> list[bytes]:
    return inclusion_proof(tree, index, size)


def test_bundles_round_trip_and_reject_truncation_and_oversized_entries():
    entries = [b"", b"a", b"x" * 65535]
    data = encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a"
    assert decode_bundle(data) == entries
    with pytest.raises(TileError, match="truncated"):
        decode_bundle(data[:-1])
    with pytest.raises(TileError, match="length prefix"):
        decode_bundle(b"\x00")
    with pytest.raises(EntryTooLarge, match="65535"):
        encode_bundle([b"x" * 65536])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 700), min_size=1, max_size=6), st.data())
def test_tiles_built_in_batches_serve_the_same_proofs_as_a_stored_tree(batches, data):
    files: dict[str, bytes] = {}
    builder, bundles = TileBuilder(), BundleBuilder()
    entries: list[bytes] = []
    sizes = []
    for count in batches:
        batch = [f"e{len(entries) + i}".encode() for i in range(count)]
        entries += batch
        for w in builder.append([leaf_hash(e) for e in batch]) + bundles.append(batch):
            files[w.path] = w.data
        sizes.append(builder.size)
    size = builder.size
    if size == 0:
        return
    tree = MemoryTree(leaf_hash(e) for e in entries)
    reader = TileReader(lambda p: files[p], size)
    assert reader.root() == tree.root() == builder.root()
    index = data.draw(st.integers(0, size - 1))
    assert reader.entry(index) == entries[index]
    assert reader.inclusion_proof(index) == _proof(tree, index, size)
    for old in sizes:
        if old:
            assert reader.consistency_proof(old) == consistency_proof(tree, old, size)
            # A reader at an older checkpoint size still works from the files kept for it.
            assert TileReader(lambda p: files[p], old).root() == tree.root(old)
    # Reopening the builder from the right-edge partial tiles continues identically.
    partials = {}
    level = 0
    while size >> (8 * level):
        w = partial_width(size, level)
        n = (size >> (8 * level)) >> 8
        partials[level] = (
            []
            if w == 0
            else [files[tile_path(level, n, w)][i : i + 32] for i in range(0, 32 * w, 32)]
        )
        level += 1
    again = TileBuilder(size, partials)
    assert again.root() == builder.root()
    extra = [leaf_hash(b"more")]
    assert [w.path for w in again.append(extra)] == [w.path for w in builder.append(extra)]
    assert again.root() == builder.root()
