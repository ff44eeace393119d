"""Release policies: the model owner's declarative JSON, in the spirit of Azure SKR.

One home for the policy language, used by the key broker to decide (``teelog.broker``) and by
the monitor to check the releases it reads from the log against the owner's expectations
(``teelog monitor --expect``, docs/monitor.md); it sits in ``entries/`` because both may import
it (docs/architecture.md), and the policies it parses are logged in ``key_policy`` entries.

Grammar (issue 11 "Policy"; Azure Key Vault SKR policy grammar, research/key-release.md §5)::

    {"version": "1.0", "allow_insecure_sample": false,
     "anyOf": [{"allOf": [{"claim": C, "equals": V} | {"claim": C, "in": [V, …]}
                          | {"claim": C, "gte": N}, …]}, …]}

over the claims in :data:`CLAIMS` (how the broker derives them from a verdict:
:mod:`teelog.broker.claims`). The policy allows when some ``allOf`` has every
condition true. A condition on an absent claim is false; on a list-valued claim
(``gpu.driver``, ``gpu.vbios``) it must hold for every element; ``gte`` compares numbers only.
Whatever the conditions say, a TD in debug mode is refused, and ``sample`` evidence only
passes when ``allow_insecure_sample`` is ``true``. The policy's digest is SHA-256 of its RFC
8785 canonical JSON, so reformatting the file does not change it; any edit of substance does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from teelog.attestation import Check

# The claims a policy may name (issue 11 "Policy"); the broker's ``claims_of`` yields only these.
CLAIMS = (
    "tee",
    "tdx.mrtd",
    "tdx.rtmr0",
    "tdx.rtmr1",
    "tdx.rtmr2",
    "tdx.rtmr3",
    "tdx.mr_config_id",
    "compose_hash",
    "os_image_hash",
    "app_id",
    "tcb_status",
    "debug",
    "gpu.count",
    "gpu.driver",
    "gpu.vbios",
)
POLICY_VERSION = "1.0"
OPERATORS = ("equals", "in", "gte")


class PolicyError(ValueError):
    """A policy document that does not follow the grammar; the message says where."""


@dataclass(frozen=True, slots=True)
class Condition:
    claim: str
    op: str
    value: Any

    def holds(self, claims: dict[str, Any]) -> bool:
        if self.claim not in claims:
            return False
        actual = claims[self.claim]
        values = actual if isinstance(actual, list) else [actual]
        if not values:
            return False
        return all(self._one(v) for v in values)

    def _one(self, actual: Any) -> bool:
        if self.op == "equals":
            return _same(actual, self.value)
        if self.op == "in":
            return any(_same(actual, v) for v in self.value)
        return _number(actual) and actual >= self.value

    def describe(self) -> str:
        return f"{self.claim} {self.op} {json.dumps(self.value)}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    # ``True == 1`` in Python; a policy saying ``"debug": 1`` must not match ``true``.
    return type(a) is type(b) and a == b


@dataclass(frozen=True, slots=True)
class Policy:
    allow_insecure_sample: bool
    any_of: tuple[tuple[Condition, ...], ...]
    document: dict[str, Any]
    sha256: str

    def evaluate(self, claims: dict[str, Any]) -> list[Check]:
        """The ``policy.*`` checks for ``claims``; the policy allows when all pass."""
        checks = []
        if claims.get("debug") is True:
            checks.append(Check("policy.debug", "fail", "a TD in debug mode is always refused"))
        if claims.get("tee") == "sample" and not self.allow_insecure_sample:
            checks.append(Check("policy.insecure_sample", "fail",
                                "sample (no TEE) evidence, and the policy does not say "
                                "allow_insecure_sample = true"))
        misses = []
        for i, group in enumerate(self.any_of):
            failed = [c for c in group if not c.holds(claims)]
            if not failed:
                checks.append(Check("policy.conditions", "pass",
                                    f"anyOf[{i}] holds (policy {self.sha256[:16]}…)"))
                return checks
            shown = failed[0]
            seen = "absent" if shown.claim not in claims else json.dumps(claims[shown.claim])
            misses.append(f"anyOf[{i}]: {shown.describe()} is false (claim {seen})")
        checks.append(Check("policy.conditions", "fail", "; ".join(misses)))
        return checks


def parse_policy(doc: Any) -> Policy:
    """A :class:`Policy` from its parsed JSON; :class:`PolicyError` names the bad member."""
    if not isinstance(doc, dict):
        raise PolicyError("a policy is a JSON object")
    unknown = sorted(set(doc) - {"version", "allow_insecure_sample", "anyOf"})
    if unknown:
        raise PolicyError(f"{unknown[0]}: unknown member")
    if doc.get("version") != POLICY_VERSION:
        raise PolicyError(f"version: expected {POLICY_VERSION!r}, got {doc.get('version')!r}")
    insecure = doc.get("allow_insecure_sample", False)
    if not isinstance(insecure, bool):
        raise PolicyError("allow_insecure_sample: expected true or false")
    any_of = doc.get("anyOf")
    if not isinstance(any_of, list) or not any_of:
        raise PolicyError("anyOf: expected a non-empty list")
    groups = []
    for i, group in enumerate(any_of):
        where = f"anyOf[{i}]"
        if not isinstance(group, dict) or set(group) != {"allOf"}:
            raise PolicyError(f"{where}: expected {{\"allOf\": [...]}}")
        all_of = group["allOf"]
        if not isinstance(all_of, list) or not all_of:
            raise PolicyError(f"{where}.allOf: expected a non-empty list")
        groups.append(tuple(_condition(c, f"{where}.allOf[{j}]") for j, c in enumerate(all_of)))
    return Policy(
        allow_insecure_sample=insecure,
        any_of=tuple(groups),
        document=doc,
        sha256=hashlib.sha256(rfc8785.dumps(doc)).hexdigest(),
    )


def _condition(item: Any, where: str) -> Condition:
    if not isinstance(item, dict) or "claim" not in item:
        raise PolicyError(f"{where}: expected {{\"claim\": …, <operator>: …}}")
    claim = item["claim"]
    if claim not in CLAIMS:
        raise PolicyError(f"{where}.claim: unknown claim {claim!r} (one of {', '.join(CLAIMS)})")
    ops = sorted(set(item) - {"claim"})
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise PolicyError(f"{where}: expected exactly one of equals, in, gte; got {ops}")
    op, value = ops[0], item[ops[0]]
    if op == "in" and (not isinstance(value, list) or not value):
        raise PolicyError(f"{where}.in: expected a non-empty list")
    if op == "gte" and not _number(value):
        raise PolicyError(f"{where}.gte: expected a number")
    if op == "equals" and isinstance(value, list | dict):
        raise PolicyError(f"{where}.equals: expected a single value")
    return Condition(claim, op, value)


def load_policy(path: str | Path) -> Policy:
    """Read and parse a policy file (UTF-8 JSON)."""
    try:
        doc = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path} is not JSON: {exc}") from exc
    return parse_policy(doc)
