"""Benchmark of encrypted model files: decrypt throughput against the raw AES-256-GCM floor.

    .venv/bin/python bench/model_bench.py                 # 1 GiB file, 5 rounds
    .venv/bin/python bench/model_bench.py --size-mib 256  # quicker

One process pinned to one core. The plaintext (a 64 MiB random block repeated; AES-GCM's
speed does not depend on content) is encrypted once by ``teelog.models`` into a tmpfs
(``/dev/shm`` when present, so the figures are CPU, not disk). Each round then measures, in
this order and in the same process:

* ``floor``   raw AES-256-GCM with ``cryptography``'s ``AESGCM.decrypt_into`` over the same
              segments (same derived key, nonces and lengths), the ciphertext already in memory
              and one preallocated output buffer: no I/O, no format handling;
* ``floor+read`` the same raw decryption, each segment first read from the ciphertext file
              with ``readinto`` into one preallocated buffer: the floor plus the one copy out
              of the page cache that reading a file costs, still no format handling;
* ``stream``  ``teelog.models.streaming_aead.decrypt`` reading the ciphertext file, output
              discarded: the format's whole cost plus reading the file;
* ``model``   ``teelog.models.decrypt_model``, i.e. ``teelog model decrypt``: manifest, key id,
              streaming decryption and writing the plaintext file to the tmpfs, then the rename.

Throughput is plaintext bytes per second; medians over the rounds. The goal (issue 11) is
``stream`` ≥ 90 % of ``floor``; ``floor+read`` shows how much of any gap is the read itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from teelog.models import decrypt_model, encrypt_model, generate_key
from teelog.models import streaming_aead as sa

MiB = 1 << 20


class _Discard:
    def write(self, data):
        return len(data)


def make_plaintext(path: Path, size: int) -> None:
    block = os.urandom(64 * MiB)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def segment_views(ciphertext: memoryview) -> list[tuple[int, memoryview]]:
    """(index, segment) for each segment of a ciphertext held in memory."""
    out, pos, index = [], sa.HEADER_LENGTH, 0
    while pos < len(ciphertext):
        size = sa.CIPHERTEXT_SEGMENT_SIZE - (sa.HEADER_LENGTH if index == 0 else 0)
        out.append((index, ciphertext[pos : pos + size]))
        pos += size
        index += 1
    return out


def floor_round(key: bytes, ad: bytes, ciphertext: memoryview) -> float:
    """Raw AES-256-GCM over the segments: the lower bound any format in Python pays."""
    header = bytes(ciphertext[: sa.HEADER_LENGTH])
    aead = AESGCM(sa.derive_file_key(key, header[1:33], ad))
    segments = segment_views(ciphertext)
    nonces = [
        header[33:40] + struct.pack(">I", i) + (b"\x01" if i == len(segments) - 1 else b"\x00")
        for i, _ in segments
    ]
    out = memoryview(bytearray(sa.PLAINTEXT_SEGMENT_SIZE))
    t0 = time.perf_counter()
    for (_i, seg), nonce in zip(segments, nonces, strict=True):
        aead.decrypt_into(nonce, seg, None, out[: len(seg) - sa.TAG_SIZE])
    return time.perf_counter() - t0


def floor_read_round(key: bytes, ad: bytes, path: Path, ciphertext: memoryview) -> float:
    """Raw AES-256-GCM over the segments as read from the file: floor plus the read copy."""
    header = bytes(ciphertext[: sa.HEADER_LENGTH])
    aead = AESGCM(sa.derive_file_key(key, header[1:33], ad))
    segments = segment_views(ciphertext)
    plan = [
        (
            len(seg),
            header[33:40] + struct.pack(">I", i) + (b"\x01" if i == len(segments) - 1 else b"\x00"),
        )
        for i, seg in segments
    ]
    buf = memoryview(bytearray(sa.CIPHERTEXT_SEGMENT_SIZE))
    out = memoryview(bytearray(sa.PLAINTEXT_SEGMENT_SIZE))
    t0 = time.perf_counter()
    with path.open("rb", buffering=0) as src:
        src.seek(sa.HEADER_LENGTH)
        for size, nonce in plan:
            src.readinto(buf[:size])
            aead.decrypt_into(nonce, buf[:size], None, out[: size - sa.TAG_SIZE])
    return time.perf_counter() - t0


def stream_round(key: bytes, ad: bytes, path: Path) -> float:
    t0 = time.perf_counter()
    with path.open("rb", buffering=0) as src:
        sa.decrypt(key, ad, src, _Discard())
    return time.perf_counter() - t0


def model_round(key: bytes, enc: Path, out: Path) -> float:
    t0 = time.perf_counter()
    decrypt_model(enc, out, key)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(out)
    return elapsed


def bench_decrypt(size: int, rounds: int, tmp: Path) -> dict[str, float]:
    src, enc = tmp / "src", tmp / "enc"
    src.mkdir()
    make_plaintext(src / "model.safetensors", size)
    key = generate_key()
    t0 = time.perf_counter()
    encrypt_model(src, enc, model="bench", version="1", key=key)
    encrypt_s = time.perf_counter() - t0
    (src / "model.safetensors").unlink()  # keep the tmpfs small
    ad = b"teelog-model/v1\nbench\n1\nmodel.safetensors"
    ct_path = enc / "model.safetensors"
    ciphertext = memoryview(ct_path.read_bytes())
    times: dict[str, list[float]] = {"floor": [], "floor_read": [], "stream": [], "model": []}
    for _ in range(rounds):
        times["floor"].append(floor_round(key, ad, ciphertext))
        times["floor_read"].append(floor_read_round(key, ad, ct_path, ciphertext))
        times["stream"].append(stream_round(key, ad, ct_path))
        times["model"].append(model_round(key, enc, tmp / "out"))
    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {f"{k}_mib_s": size / MiB / s for k, s in medians.items()}
    result["encrypt_mib_s"] = size / MiB / encrypt_s
    result["stream_vs_floor"] = medians["floor"] / medians["stream"]
    result["stream_vs_floor_read"] = medians["floor_read"] / medians["stream"]
    result["model_vs_floor"] = medians["floor"] / medians["model"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="plaintext size (MiB)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="teelog-model-bench-", dir=base) as tmp:
        r = bench_decrypt(args.size_mib * MiB, args.rounds, Path(tmp))
    print(
        f"Python {sys.version.split()[0]}, cryptography {cryptography.__version__}, "
        f"{args.size_mib} MiB, {args.rounds} rounds (medians), one core, "
        f"tmpfs={'yes' if base else 'no'}"
    )
    print(f"encrypt (teelog, once)       {r['encrypt_mib_s']:8.0f} MiB/s")
    print(f"floor   raw AES-256-GCM      {r['floor_mib_s']:8.0f} MiB/s")
    print(f"floor+read raw, from the file {r['floor_read_mib_s']:8.0f} MiB/s")
    print(
        f"stream  teelog, file -> null {r['stream_mib_s']:8.0f} MiB/s  "
        f"{100 * r['stream_vs_floor']:.1f} % of floor (goal >= 90 %), "
        f"{100 * r['stream_vs_floor_read']:.1f} % of floor+read"
    )
    print(
        f"model   teelog model decrypt {r['model_mib_s']:8.0f} MiB/s  "
        f"{100 * r['model_vs_floor']:.1f} % of floor"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
