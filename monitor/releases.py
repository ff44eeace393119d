"""A model owner's expectations of the key broker's releases: ``teelog monitor --model NAME
--expect FILE`` (issue 11 "Explorer and monitor", docs/monitor.md "Releases of a model").

The expect file is UTF-8 JSON::

    {"version": 1,
     "measurements": {"version": "1.0", "anyOf": [{"allOf": [{"claim": …, "in": […]}, …]}]},
     "published_policies": ["<SHA-256 hex of a policy's RFC 8785 JSON>", …]}

``measurements`` is a release policy in the broker's own language
(:mod:`teelog.entries.release_policy`): the measurement sets the owner expects keys to go to.
``published_policies`` are the digests of the policies the owner published to brokers (the
``policy_sha256`` of ``key_release`` and ``key_policy`` entries).

Each ``key_release`` entry of the model that is not a denial is a release (a key may have
left the broker), and raises, each at most once:

- ``release.insecure_sample``: the entry says ``insecure`` (or is not ``false``) or the
  requester's TEE is ``sample`` (no TEE at all);
- ``release.unpublished_policy``: its ``policy_sha256`` is not a published digest;
- ``release.unexpected_measurements``: the claims the broker logged do not satisfy
  ``measurements`` (a debug TD never does, as for the broker).

The claims are those the broker logged, not re-derived from the evidence: the monitor checks
what the broker says it saw against what the owner allows, so a broker that misapplies or
swaps a policy is caught; one that lies about the claims is not (docs/monitor.md "Limits").
Denials are counted, never alerted on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teelog.entries.key_release import ENTRY_TYPE
from teelog.entries.release_policy import Policy, PolicyError, parse_policy

EXPECT_VERSION = 1
_MEMBERS = ("version", "measurements", "published_policies")
_SHA256_HEX = re.compile(r"\A[0-9a-f]{64}\Z")


class ExpectError(ValueError):
    """An unusable expect file; the message names the member that is wrong."""


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the owner of ``model`` expects of its releases."""

    model: str
    measurements: Policy
    published_policies: frozenset[str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One way a release departs from the expectations (an alert's type, detail, fields)."""

    kind: str
    detail: str
    extra: dict[str, Any]


def parse_expect(doc: Any, model: str) -> Expectations:
    """:class:`Expectations` for ``model`` from the parsed expect file."""
    if not isinstance(doc, dict):
        raise ExpectError("the expect file is not a JSON object")
    unknown = sorted(set(doc) - set(_MEMBERS))
    if unknown:
        raise ExpectError(f"{unknown[0]}: unknown member (expected {', '.join(_MEMBERS)})")
    version = doc.get("version")
    if type(version) is not int or version != EXPECT_VERSION:
        raise ExpectError(f"version: expected {EXPECT_VERSION}, got {json.dumps(version)}")
    if "measurements" not in doc:
        raise ExpectError("measurements: missing (a release policy of the expected sets)")
    try:
        measurements = parse_policy(doc["measurements"])
    except PolicyError as exc:
        raise ExpectError(f"measurements: {exc}" if str(exc).startswith("a policy") else
                          f"measurements.{exc}") from exc
    if measurements.allow_insecure_sample:
        raise ExpectError("measurements.allow_insecure_sample: must be false or absent "
                          "(an insecure sample release always alerts)")
    published = doc.get("published_policies")
    if not isinstance(published, list):
        raise ExpectError("published_policies: expected a list of policy SHA-256 digests")
    for i, digest in enumerate(published):
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
            raise ExpectError(f"published_policies[{i}]: expected 64 lowercase hex digits "
                              f"(a policy's SHA-256), got {json.dumps(digest)[:80]}")
    return Expectations(model, measurements, frozenset(published))


def load_expect(path: Path, model: str) -> Expectations:
    """Read and parse an expect file; :class:`ExpectError` on any problem, in one line."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ExpectError(f"cannot read it: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExpectError(f"not JSON: {exc}") from exc
    return parse_expect(doc, model)


def is_release_of(entry: dict[str, Any], model: str) -> bool | None:
    """True for a release of ``model``, False for a denial of it, None for anything else."""
    if entry.get("type") != ENTRY_TYPE:
        return None
    named = entry.get("model")
    if not isinstance(named, dict) or named.get("name") != model:
        return None
    return entry.get("decision") != "denied"


def check_release(expect: Expectations, entry: dict[str, Any]) -> list[Finding]:
    """How a release entry of the model departs from ``expect`` (empty: it does not)."""
    requester = entry.get("requester")
    requester = requester if isinstance(requester, dict) else {}
    claims = requester.get("claims")
    claims = claims if isinstance(claims, dict) else {}
    findings = []
    tee = requester.get("tee")
    if entry.get("insecure") is not False or tee == "sample":
        findings.append(Finding(
            "release.insecure_sample",
            f"a key of {expect.model} was released to insecure sample evidence (no TEE)",
            {"tee": tee, "insecure": entry.get("insecure")},
        ))
    digest = entry.get("policy_sha256")
    if digest not in expect.published_policies:
        findings.append(Finding(
            "release.unpublished_policy",
            f"a key of {expect.model} was released under policy {json.dumps(digest)[:80]}, "
            "which the owner did not publish",
            {"policy_sha256": digest},
        ))
    # Sample evidence has its own alert above; every other policy check (the conditions, a
    # debug TD) says the requester is outside the expected sets.
    failed = [c for c in expect.measurements.evaluate(claims)
              if c.status == "fail" and c.name != "policy.insecure_sample"]
    if failed:
        findings.append(Finding(
            "release.unexpected_measurements",
            f"a key of {expect.model} was released to measurements outside the expected sets",
            {"failed": [{"name": c.name, "detail": c.detail} for c in failed],
             "claims": claims},
        ))
    return findings
