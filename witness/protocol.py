"""``add-checkpoint`` (c2sp.org/tlog-witness v1 §add-checkpoint): judge, persist, cosign.

The request body is ``old <size>\\n``, at most 63 base64 consistency-proof lines, a blank line,
then the signed checkpoint note.  The answers are exactly the spec's:

* 400 malformed body, or old size above the checkpoint size;
* 404 unknown origin;  403 no valid signature by the log's configured key;
* 409 ``old`` is not the size of the latest cosigned checkpoint (body ``<size>\\n``,
  ``Content-Type: text/x.tlog.size``), or same size with a different root;
* 422 the RFC 6962 consistency proof does not verify (or is not empty for ``old 0``);
* 200 with the ``cosignature/v1`` signature line, after the new state is durable.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from teelog.log.checkpoint import Checkpoint, CheckpointError, parse_checkpoint_body
from teelog.log.merkle import HASH_SIZE, ProofError, verify_consistency
from teelog.log.note import NoteError, open_note, parse_note

from .config import WitnessedLog
from .cosigner import CosignatureSigner
from .state import WitnessState, origin_hash

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, content type and body."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed request: the old size, the consistency proof and the checkpoint note."""

    old: int
    proof: tuple[bytes, ...]
    note: str


class RequestError(ValueError):
    """The body is not an add-checkpoint request (answered with 400)."""


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse the request body strictly (every line ends in a newline)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError("request body is not UTF-8") from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise RequestError("request body has no blank line before the checkpoint")
    lines = head.split("\n")
    first, proof_lines = lines[0], lines[1:]
    size_s = first.removeprefix("old ")
    if (
        size_s == first
        or not size_s.isascii()
        or not size_s.isdigit()
        or (size_s != "0" and size_s[0] == "0")
    ):
        raise RequestError(f"first line {first[:40]!r} is not 'old <size>' (decimal)")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise RequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            h = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as e:
            raise RequestError(f"proof line {line[:60]!r} is not base64") from e
        if len(h) != HASH_SIZE:
            raise RequestError(f"proof line {line[:60]!r} is not a {HASH_SIZE}-byte hash")
        proof.append(h)
    return AddCheckpoint(int(size_s), tuple(proof), note)


class Witness:
    """The witness: its cosigner, the logs it knows, and their persisted state."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: dict[str, WitnessedLog],
        data_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = logs
        self.state = WitnessState(data_dir)
        self._clock = clock

    def add_checkpoint(self, body: bytes) -> Reply:
        """Answer one ``POST add-checkpoint`` request body."""
        try:
            req = parse_add_checkpoint(body)
            note = parse_note(req.note)
            cp = parse_checkpoint_body(note.text)
        except (RequestError, NoteError, CheckpointError) as e:
            return Reply(400, f"{e}\n")
        log = self.logs.get(cp.origin)
        if log is None:
            return Reply(404, f"unknown log origin {cp.origin!r}\n")
        try:
            open_note(req.note, [log.key])
        except NoteError as e:
            return Reply(403, f"checkpoint not signed by the log key: {e}\n")
        if req.old > cp.size:
            return Reply(400, f"old size {req.old} is above the checkpoint size {cp.size}\n")
        if req.old == 0 and req.proof:
            return Reply(422, "the consistency proof from old size 0 must be empty\n")

        def decide(latest: Checkpoint | None) -> tuple[str | None, Reply]:
            have = latest.size if latest else 0
            if req.old != have:
                return None, Reply(409, f"{have}\n", SIZE_CONTENT_TYPE)
            if latest is not None:
                if cp.size == latest.size and cp.root != latest.root:
                    return None, Reply(409, f"{have}\n", SIZE_CONTENT_TYPE)
                try:
                    verify_consistency(latest.size, cp.size, req.proof, latest.root, cp.root)
                except ProofError as e:
                    return None, Reply(422, f"consistency proof does not verify: {e}\n")
            line = self.signer.cosign(note.text, int(self._clock())).line()
            return req.note + line, Reply(200, line)

        return self.state.update(cp.origin, decide)

    def latest_note(self, origin_sha256_hex: str) -> str | None:
        """The stored cosigned checkpoint for the log whose origin hashes to the given hex."""
        for origin in self.logs:
            if origin_hash(origin) == origin_sha256_hex:
                cp = self.state.latest(origin)
                return cp.note if cp else None
        return None
