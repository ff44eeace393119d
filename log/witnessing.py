"""The log asks witnesses for cosignatures (c2sp.org/tlog-witness, client side).

One worker thread per witness of the policy keeps that witness up to date with the log's
latest checkpoint: it posts ``add-checkpoint`` with a consistency proof from the size the
witness last cosigned (``old 0`` until it knows), and on 409 reads the witness's size from the
``text/x.tlog.size`` body and retries from there.  Workers run in parallel, each request has a
timeout, and failures back off; nothing here blocks the sequencer, so a witness that is down
never stops the log.  Each cosignature is verified before it is kept, and whenever one arrives
for the latest checkpoint the log re-publishes that checkpoint with all the cosignatures it has
(so late cosignatures are published too).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from .checkpoint import parse_checkpoint
from .note import NoteError, open_note
from .policy import PolicyWitness, WitnessPolicy

log = logging.getLogger(__name__)

ProofSource = Callable[[int, int], Sequence[bytes]]


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint note with the verified cosignature lines collected for it."""

    note: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.note + "".join(self.lines)


class WitnessRefused(RuntimeError):
    """A witness answered with a refusal that retrying the same checkpoint cannot fix."""


def request_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def add_checkpoint(
    client: httpx.Client, witness: PolicyWitness, note: str, size: int, old: int,
    proofs: ProofSource,
) -> tuple[str, int]:
    """Post ``note`` (tree ``size``) with a proof from ``old``; follow one 409 to the witness's
    size.  Return ``(verified cosignature line, size the witness now has)``."""
    for _attempt in range(2):
        proof = proofs(old, size) if 0 < old < size else []
        r = client.post(f"{witness.url}/add-checkpoint", content=request_body(old, proof, note))
        if r.status_code == 409 and r.headers.get("content-type", "").startswith(
            "text/x.tlog.size"
        ):
            text = r.text.strip()
            if not text.isdigit():
                raise WitnessRefused(f"{witness.name}: 409 with a malformed size {text[:20]!r}")
            theirs = int(text)
            if theirs > size or theirs == old:
                # ahead of us, or the same size with another root: a fork or a rollback
                raise WitnessRefused(f"{witness.name} has size {theirs}, the log {size}: 409")
            old = theirs
            continue
        if r.status_code != 200:
            raise WitnessRefused(f"{witness.name}: HTTP {r.status_code}: {r.text[:200]}")
        for line in r.text.splitlines(keepends=True):
            try:
                opened = open_note(note + line, [witness.key])
            except NoteError:
                continue  # not this witness's key (or not for this note): ignore
            if any(s.name == witness.key.name for s in opened.verified):
                return line, size
        raise WitnessRefused(f"{witness.name}: 200 without a valid cosignature from its key")
    raise WitnessRefused(f"{witness.name}: still 409 after moving to its size")


class Witnessing:
    """Background cosignature collection for one log; ``offer`` each new checkpoint note."""

    def __init__(
        self,
        policy: WitnessPolicy,
        proofs: ProofSource,
        publish: Callable[[Cosigned], None],
        *,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.policy = policy
        self._proofs = proofs
        self._publish = publish
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._cond = threading.Condition()
        self._latest: str | None = None
        self._size = -1
        self._cosigs: dict[str, str] = {}  # policy witness name -> line, for _latest
        self._stop = threading.Event()
        self.known_sizes: dict[str, int] = {}  # what each witness last cosigned
        self.errors: dict[str, str] = {}  # the last error per witness (status, metrics)
        self._threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True, name=f"witness-{w.name}")
            for w in policy.witnesses.values()
            if w.url
        ]
        for t in self._threads:
            t.start()

    def offer(self, note: str) -> None:
        """A new checkpoint was signed: start collecting cosignatures for it (returns at once)."""
        size = parse_checkpoint(note).size
        with self._cond:
            if size <= self._size and self._latest is not None:
                return
            self._latest, self._size, self._cosigs = note, size, {}
            self._cond.notify_all()

    def current(self) -> Cosigned | None:
        with self._cond:
            if self._latest is None:
                return None
            return Cosigned(self._latest, tuple(self._cosigs[k] for k in sorted(self._cosigs)))

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=self._timeout + 1)

    def _run(self, witness: PolicyWitness) -> None:
        backoff = 0.1
        done = None  # the note this witness has cosigned (or refused for good)
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                with self._cond:
                    while not self._stop.is_set() and self._latest in (None, done):
                        self._cond.wait()
                    if self._stop.is_set():
                        return
                    note, size = self._latest, self._size
                try:
                    line, have = add_checkpoint(
                        client, witness, note, size, self.known_sizes.get(witness.name, 0),
                        self._proofs,
                    )
                except WitnessRefused as e:
                    log.warning("witness refused the checkpoint of size %d: %s", size, e)
                    self.errors[witness.name] = str(e)
                    self.known_sizes.pop(witness.name, None)  # relearn its size via 409
                    done = note
                    continue
                except (httpx.HTTPError, OSError, ValueError) as e:
                    self.errors[witness.name] = f"{type(e).__name__}: {e}"
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = 0.1
                done = note
                self.known_sizes[witness.name] = have
                self.errors.pop(witness.name, None)
                with self._cond:
                    if self._latest != note:
                        continue  # a newer checkpoint came meanwhile: its turn next
                    self._cosigs[witness.name] = line
                    cosigned = Cosigned(
                        note, tuple(self._cosigs[k] for k in sorted(self._cosigs))
                    )
                try:
                    self._publish(cosigned)
                except OSError as e:
                    log.warning("could not publish the cosigned checkpoint: %s", e)

