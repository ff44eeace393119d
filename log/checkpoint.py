"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the signed tree head of the log.

The body is ``<origin>\\n<size>\\n<base64 root>\\n`` followed by optional extension lines (this
log writes none, as the spec recommends).  It is carried in a signed note signed by the log's
Ed25519 key; witnesses add ``cosignature/v1`` lines (c2sp.org/tlog-cosignature).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from .merkle import HASH_SIZE
from .note import (
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    Verifier,
    open_note,
    parse_note,
    sign_note,
)


class CheckpointError(ValueError):
    """A checkpoint is malformed, for another log, or not signed as required."""


@dataclass(frozen=True)
class Cosignature:
    """A verified witness cosignature: who, and the time it asserts (Unix seconds)."""

    name: str
    timestamp: int


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and root; ``note`` is the full signed note when there is one."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    note: str = ""
    cosignatures: tuple[Cosignature, ...] = field(default=())

    @property
    def body(self) -> str:
        """The note text: the checkpoint lines, ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    def sign(self, signer: Ed25519Signer) -> Checkpoint:
        """Return this checkpoint with ``note`` signed by the log's key."""
        return Checkpoint(
            self.origin, self.size, self.root, self.extensions, sign_note(self.body, signer)
        )


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly (tlog-checkpoint §Note text)."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint must have an origin, a size and a root line")
    origin, size_s, root_s, *ext = lines
    if not origin:
        raise CheckpointError("checkpoint origin line is empty")
    if not size_s.isascii() or not size_s.isdigit() or (size_s != "0" and size_s[0] == "0"):
        raise CheckpointError(f"checkpoint size {size_s!r} is not a decimal without leading zeros")
    try:
        root = base64.b64decode(root_s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise CheckpointError("checkpoint root is not valid base64") from e
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root has {len(root)} bytes, not {HASH_SIZE}")
    if any(not line for line in ext):
        raise CheckpointError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_s), root, tuple(ext))


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a signed checkpoint note without verifying any signature (display, tests)."""
    try:
        parsed = parse_note(note)
    except NoteError as e:
        raise CheckpointError(f"checkpoint note: {e}") from e
    cp = parse_checkpoint_body(parsed.text)
    return Checkpoint(cp.origin, cp.size, cp.root, cp.extensions, note)


def open_checkpoint(
    note: str,
    log_key: Ed25519Verifier,
    *,
    origin: str | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
) -> Checkpoint:
    """Verify a checkpoint note: the log's signature, the origin, and a k-of-n witness policy.

    ``origin`` defaults to the log key's name.  Signatures by keys not given are ignored.  At least
    ``quorum`` distinct witnesses among ``witnesses`` must have cosigned.  Raises
    :class:`CheckpointError` saying which requirement failed.
    """
    verifiers: list[Verifier] = [log_key, *witnesses]
    try:
        opened = open_note(note, verifiers)
    except NoteError as e:
        raise CheckpointError(f"checkpoint signature check failed: {e}") from e
    if not any(s.name == log_key.name and s.key_id == log_key.key_id for s in opened.verified):
        raise CheckpointError(f"checkpoint is not signed by the log key {log_key.name}")
    cp = parse_checkpoint_body(opened.text)
    want_origin = log_key.name if origin is None else origin
    if cp.origin != want_origin:
        raise CheckpointError(f"checkpoint origin is {cp.origin!r}, expected {want_origin!r}")
    witness_ids = {(w.name, w.key_id) for w in witnesses}
    cosigs = tuple(
        Cosignature(s.name, struct.unpack(">Q", s.sig[:8])[0])
        for s in opened.verified
        if (s.name, s.key_id) in witness_ids
    )
    if len(cosigs) < quorum:
        raise CheckpointError(
            f"checkpoint has {len(cosigs)} valid witness cosignatures, policy needs {quorum}"
        )
    return Checkpoint(cp.origin, cp.size, cp.root, cp.extensions, note, cosigs)
