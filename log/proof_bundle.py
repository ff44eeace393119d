"""C2SP tlog-proof (``c2sp.org/tlog-proof@v1``): an offline proof that an entry is in the log.

Format (c2sp.org/tlog-proof §Format)::

    c2sp.org/tlog-proof@v1
    [extra <base64>]
    index <N>
    <base64 inclusion proof hash, leaf's sibling first> ...
    <empty line>
    <the checkpoint note, verbatim, with its signatures and cosignatures>

Verification recomputes the leaf hash from the entry, opens the checkpoint with the log key (and
a k-of-n witness policy), and checks the RFC 9162 inclusion proof against the checkpoint root.
``extra`` is carried but never trusted.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from .checkpoint import Checkpoint, CheckpointError, open_checkpoint
from .merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from .note import CosignatureVerifier, Ed25519Verifier

HEADER = "c2sp.org/tlog-proof@v1"


class TlogProofError(ValueError):
    """A tlog-proof is malformed or does not prove what it claims."""


@dataclass(frozen=True)
class TlogProof:
    """A parsed proof; ``checkpoint`` is set (verified) only by :func:`verify_tlog_proof`."""

    index: int
    proof: list[bytes]
    checkpoint_note: str
    extra: bytes | None = None
    checkpoint: Checkpoint | None = None


def format_tlog_proof(
    index: int, proof: Sequence[bytes], checkpoint_note: str, extra: bytes | None = None
) -> str:
    """Serialise a proof bundle."""
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in proof]
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a proof bundle strictly; raise :class:`TlogProofError` naming the bad line."""
    head, sep, note = text.partition("\n\n")
    if not sep or not note:
        raise TlogProofError("tlog-proof has no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"tlog-proof must start with {HEADER!r}")
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        try:
            extra = base64.b64decode(lines[pos][6:], validate=True)
        except binascii.Error as e:
            raise TlogProofError("tlog-proof extra data is not valid base64") from e
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise TlogProofError("tlog-proof has no 'index <N>' line")
    idx = lines[pos][6:]
    if not idx.isascii() or not idx.isdigit() or (idx != "0" and idx.startswith("0")):
        raise TlogProofError(f"tlog-proof index {idx!r} is not a decimal without leading zeros")
    proof = []
    for line in lines[pos + 1 :]:
        try:
            h = base64.b64decode(line, validate=True)
        except binascii.Error as e:
            raise TlogProofError(f"tlog-proof hash line {line[:50]!r} is not base64") from e
        if len(h) != HASH_SIZE:
            raise TlogProofError(f"tlog-proof hash line {line[:50]!r} is not a SHA-256 hash")
        proof.append(h)
    return TlogProof(int(idx), proof, note, extra)


def verify_tlog_proof(
    text: str,
    entry: bytes,
    log_key: Ed25519Verifier,
    *,
    origin: str | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
) -> TlogProof:
    """Verify a proof bundle for ``entry`` offline; return it with its verified checkpoint."""
    p = parse_tlog_proof(text)
    try:
        cp = open_checkpoint(
            p.checkpoint_note, log_key, origin=origin, witnesses=witnesses, quorum=quorum
        )
    except CheckpointError as e:
        raise TlogProofError(str(e)) from e
    try:
        verify_inclusion(p.index, cp.size, leaf_hash(entry), p.proof, cp.root)
    except ProofError as e:
        raise TlogProofError(f"entry is not at index {p.index} of the checkpoint: {e}") from e
    return TlogProof(p.index, p.proof, p.checkpoint_note, p.extra, cp)
