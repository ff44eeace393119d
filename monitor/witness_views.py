"""Split-view detection: compare the log's verified checkpoint with each witness's latest view
(c2sp.org/tlog-witness monitoring retrieval, ``GET <prefix>/<hex(sha256(origin))>/checkpoint``).

A witness's view is the latest checkpoint it cosigned.  If it is for the same size with another
root, or for a smaller size that the log's tiles cannot prove consistent with the checkpoint the
monitor verified, the log showed the witness a different history than the monitor: a split view.
A view ahead of the monitor's is not judged here (the log may simply have grown since; the next
poll reads the larger checkpoint and the check applies then).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from teelog.log.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from teelog.log.merkle import ProofError, verify_consistency
from teelog.log.note import Ed25519Verifier
from teelog.log.policy import PolicyWitness


@dataclass(frozen=True)
class SplitView:
    """A witness saw a checkpoint inconsistent with the monitor's: both notes, and why."""

    witness: str
    witness_note: str
    why: str


def witness_view_url(witness: PolicyWitness, origin: str) -> str:
    return f"{witness.url}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint"


def fetch_view(
    client: httpx.Client, witness: PolicyWitness, log_key: Ed25519Verifier
) -> Checkpoint | None:
    """The witness's latest view, verified (log signature and the witness's cosignature), or
    None if it has none yet.  Raises ``httpx.HTTPError`` or :class:`CheckpointError`."""
    r = client.get(witness_view_url(witness, log_key.name))
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return open_checkpoint(r.text, log_key, witnesses=[witness.key], quorum=1)


def compare_view(
    view: Checkpoint,
    verified: Checkpoint,
    consistency: Callable[[int, int], Sequence[bytes]],
) -> str | None:
    """Why ``view`` (a witness's) contradicts the monitor's ``verified`` checkpoint, or None."""
    if view.size > verified.size or view.size == 0:
        return None
    if view.size == verified.size:
        if view.root != verified.root:
            return f"the witness cosigned another root for size {view.size}"
        return None
    try:
        proof = consistency(view.size, verified.size)
        verify_consistency(view.size, verified.size, proof, view.root, verified.root)
    except (ProofError, ValueError, OSError) as e:
        return f"the witness's size {view.size} is not consistent with size {verified.size}: {e}"
    return None


def split_views(
    witnesses: Sequence[PolicyWitness],
    log_key: Ed25519Verifier,
    verified: Checkpoint,
    consistency: Callable[[int, int], Sequence[bytes]],
    *,
    timeout: float = 10.0,
) -> tuple[list[SplitView], dict[str, str]]:
    """Check each witness with a URL; return the split views and per-witness read errors."""
    found: list[SplitView] = []
    errors: dict[str, str] = {}
    with httpx.Client(timeout=timeout) as client:
        for w in witnesses:
            if not w.url:
                continue
            try:
                view = fetch_view(client, w, log_key)
            except (httpx.HTTPError, CheckpointError) as e:
                errors[w.name] = f"{type(e).__name__}: {e}"
                continue
            if view is None:
                continue
            why = compare_view(view, verified, consistency)
            if why:
                found.append(SplitView(w.name, view.note, why))
    return found, errors
