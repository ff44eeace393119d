"""Witness policy: which witnesses count and how many must cosign (Sigsum policy format,
git.glasklar.is/sigsum/core/sigsum-go doc/policy.md, with C2SP vkeys in place of hex keys).

One statement per line, ``#`` starts a comment::

    witness NAME VKEY [URL]      # a type 0x04 cosignature/v1 key (c2sp.org/tlog-cosignature)
    group NAME K|all|any MEMBER… # K of the members (witnesses or earlier groups)
    quorum NAME                  # the witness or group that must be satisfied (or "none")

Names are defined before use and only once; the URL is the witness's tlog-witness submission
prefix (the log posts ``<URL>/add-checkpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import open_checkpoint
from .note import CosignatureVerifier, Ed25519Verifier, NoteError, parse_vkey

POLICY_FILE = "witness-policy"


class PolicyError(ValueError):
    """The policy text is malformed (the message names the line)."""


@dataclass(frozen=True)
class PolicyWitness:
    name: str
    key: CosignatureVerifier
    url: str | None


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class PolicyResult:
    """What a checkpoint's cosignatures meet: the policy names that cosigned, and the quorum."""

    cosigned: tuple[str, ...]
    quorum_met: bool


@dataclass(frozen=True)
class WitnessPolicy:
    witnesses: dict[str, PolicyWitness] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str | None = None  # None: "quorum none", no cosignature required

    def satisfied(self, cosigned: set[str], name: str | None = None) -> bool:
        """Whether the witnesses named in ``cosigned`` satisfy ``name`` (default: the quorum)."""
        name = self.quorum if name is None else name
        if name is None:
            return True
        if name in self.witnesses:
            return name in cosigned
        group = self.groups[name]
        return sum(self.satisfied(cosigned, m) for m in group.members) >= group.threshold

    def verifiers(self) -> list[CosignatureVerifier]:
        return [w.key for w in self.witnesses.values()]

    def check(self, note: str, log_key: Ed25519Verifier, origin: str | None = None) -> PolicyResult:
        """Verify the log's signature and every known cosignature; evaluate the quorum.

        Raises :class:`CheckpointError` if the log signature or a known cosignature is bad.
        """
        cp = open_checkpoint(note, log_key, origin=origin, witnesses=self.verifiers())
        # open_checkpoint keeps only cosignatures by these keys (name and key ID matched)
        by_key_name = {w.key.name: w.name for w in self.witnesses.values()}
        signed = {by_key_name[c.name] for c in cp.cosignatures}
        return PolicyResult(tuple(sorted(signed)), self.satisfied(signed))


def parse_policy(text: str, source: str = POLICY_FILE) -> WitnessPolicy:
    witnesses: dict[str, PolicyWitness] = {}
    groups: dict[str, Group] = {}
    quorum: str | None = None
    seen_quorum = False
    for n, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{source} line {n}"
        kind, args = words[0], words[1:]
        if kind in ("witness", "group") and args and (args[0] in witnesses or args[0] in groups):
            raise PolicyError(f"{where}: the name {args[0]!r} is already defined")
        if kind == "witness":
            if len(args) not in (2, 3):
                raise PolicyError(f"{where}: expected 'witness NAME VKEY [URL]'")
            try:
                key = parse_vkey(args[1])
            except NoteError as e:
                raise PolicyError(f"{where}: {e}") from e
            if not isinstance(key, CosignatureVerifier):
                raise PolicyError(f"{where}: a witness vkey must be type 0x04 (cosignature/v1)")
            url = args[2].rstrip("/") if len(args) == 3 else None
            if url is not None and not url.startswith(("http://", "https://")):
                raise PolicyError(f"{where}: witness URL must be http:// or https://")
            witnesses[args[0]] = PolicyWitness(args[0], key, url)
        elif kind == "group":
            if len(args) < 3:
                raise PolicyError(f"{where}: expected 'group NAME K|all|any MEMBER...'")
            name, k, members = args[0], args[1], tuple(args[2:])
            for m in members:
                if m not in witnesses and m not in groups:
                    raise PolicyError(f"{where}: member {m!r} is not defined above")
            if len(set(members)) != len(members):
                raise PolicyError(f"{where}: a member is listed twice")
            if k == "all":
                threshold = len(members)
            elif k == "any":
                threshold = 1
            elif k.isdigit() and 1 <= int(k) <= len(members):
                threshold = int(k)
            else:
                raise PolicyError(f"{where}: threshold {k!r} must be all, any or 1..{len(members)}")
            groups[name] = Group(name, threshold, members)
        elif kind == "quorum":
            if len(args) != 1:
                raise PolicyError(f"{where}: expected 'quorum NAME'")
            if seen_quorum:
                raise PolicyError(f"{where}: quorum is set twice")
            seen_quorum = True
            if args[0] != "none" and args[0] not in witnesses and args[0] not in groups:
                raise PolicyError(f"{where}: quorum {args[0]!r} is not defined above")
            quorum = None if args[0] == "none" else args[0]
        else:
            raise PolicyError(f"{where}: unknown statement {kind!r}")
    if not seen_quorum:
        raise PolicyError(f"{source}: no quorum line")
    return WitnessPolicy(witnesses, groups, quorum)


def read_policy(path: Path) -> WitnessPolicy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"cannot read the witness policy {path}: {e}") from e
    return parse_policy(text, str(path))

