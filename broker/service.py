"""The broker's three KBS requests, apart from HTTP: ``auth``, ``attest`` and ``resource``.

Every decision is appended to the log as a ``key_release`` entry (:mod:`teelog.entries.
key_release`) *before* the answer: a denial is logged, then refused; a release is logged, and
its JWE handed out only once the entry is durable and covered by a signed checkpoint
(:meth:`teelog.log.Log.append_many`). Concurrent decisions are group-committed: they share
one append and one checkpoint (:mod:`teelog.broker.group_commit`). If the log cannot take
the entry (or the evidence blob), the answer is 503 ``LogUnavailable`` and nothing is released.

Decisions: a refused ``/attest`` (unknown or expired session, wrong or reused nonce, weak
tee-pubkey, evidence that fails the gates of :mod:`teelog.broker.gates`) is a denial with no
resource; every ``/resource`` request is a release or a denial of that resource. A request
whose body is not even the protocol's JSON is refused (``SerdeError``) without an entry: it
carries nothing to attribute.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from teelog.attestation import Check, Collateral
from teelog.entries.key_policy import encode_key_policy, key_policy_entry
from teelog.entries.key_release import encode_key_release, key_release_entry
from teelog.log import Log

from .config import BrokerConfig, ConfigError, Resource
from .errors import KbsError
from .evidence import EvidenceResult, verify_evidence
from .gates import gate_failures
from .group_commit import GroupCommit
from .jwe import wrap_secret
from .protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_TEES,
    Attestation,
    Challenge,
    Request,
    json_object,
)
from .resource_path import resource_of_request
from .sessions import Session, SessionStore
from .tee_key import TeeKey, parse_tee_key
from .token import TokenSigner

_SHOWN = 256  # untrusted strings kept in an entry are cut to this many characters


class Denied(KbsError):
    """A refusal that was logged: the answer carries the entry's index and checkpoint size."""

    def __init__(self, name: str, detail: str, index: int, size: int) -> None:
        super().__init__(name, detail)
        self.entry_index = index
        self.checkpoint_size = size


@dataclass(frozen=True, slots=True)
class Release:
    """A released key: the response body (the flattened JWE) and where its entry is."""

    body: bytes
    entry_index: int
    checkpoint_size: int


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= _SHOWN:
        return text
    return text[: _SHOWN - 1] + "…"


def _failed(checks: list[Check]) -> list[dict[str, str]]:
    return [{"name": c.name, "detail": c.detail} for c in checks]


class Broker:
    """One broker: configuration, log, sessions, token key and a clock."""

    def __init__(
        self,
        config: BrokerConfig,
        log: Log,
        *,
        collateral: Collateral | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        self.collateral = collateral if collateral is not None else Collateral.from_files(
            config.collateral.files,
            pccs_url=config.collateral.pccs_url,
            cache_dir=config.collateral.cache_dir,
        )
        self.sessions = SessionStore(clock=clock)
        # Concurrent decisions share one log append and checkpoint (broker/group_commit.py).
        self.decisions = GroupCommit(log.append_many, lambda: log.checkpoint().size)
        self.tokens = TokenSigner(f"teelog-broker/{config.name}", ttl=config.token_ttl,
                                  clock=clock)

    # --- the log ----------------------------------------------------------------------------

    def publish_policies(self) -> list[int]:
        """Append a ``key_policy`` entry per resource (an unchanged one is found, not added);
        the log indexes, in resource order. Raises the log's error if it cannot take them."""
        entries = [
            encode_key_policy(key_policy_entry(
                broker=self.config.name, resource=r.path, model=r.model, version=r.version,
                manifest_sha256=r.manifest_sha256, key_id=r.key_id,
                policy_sha256=r.policy.sha256, policy=r.policy.document,
            ))
            for r in self.config.resources
        ]
        return self.log.append_many(entries)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def _record(self, **fields: Any) -> tuple[int, int]:
        entry = key_release_entry(broker=self.config.name, decided_at=self._now(), **fields)
        try:
            index, size = self.decisions.append(encode_key_release(entry))
        except Exception as exc:  # any storage failure: fail closed, say so
            raise KbsError("LogUnavailable", f"the log cannot take the decision ({exc}); "
                           "nothing is released") from exc
        return index, size

    def _deny(self, name: str, failed: list[Check], **fields: Any) -> Denied:
        defaults: dict[str, Any] = {
            "insecure": False, "resource": None, "model": None, "version": None,
            "manifest_sha256": None, "key_id": None, "policy_sha256": None, "tee": None,
            "tee_pubkey_thumbprint": None, "nonce": None, "quote_sha256": None,
            "report_data": None, "evidence_sha256": None, "claims": None,
            "measurements": None, "evidence_status": None, "response_sha256": None,
        }
        index, size = self._record(decision="denied", failed=_failed(failed),
                                   **{**defaults, **fields})
        detail = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        return Denied(name, detail, index, size)

    # --- POST /kbs/v0/auth ------------------------------------------------------------------

    def auth(self, body: bytes) -> tuple[Session, Challenge]:
        request = Request.from_json(json_object(body, "auth"))
        if request.version != PROTOCOL_VERSION:
            raise KbsError("AttestationError", f"protocol version {request.version!r} not "
                           f"supported (this broker speaks {PROTOCOL_VERSION})")
        if request.tee not in SUPPORTED_TEES:
            raise KbsError("AttestationError", f"tee {request.tee!r} not supported "
                           f"({', '.join(SUPPORTED_TEES)})")
        session = self.sessions.create(request.tee)
        return session, Challenge(nonce=session.nonce)

    # --- POST /kbs/v0/attest ----------------------------------------------------------------

    def attest(self, session_id: str | None, body: bytes) -> tuple[Session, str]:
        att = Attestation.from_json(json_object(body, "attest"))
        try:
            evidence_blob = self.log.blobs.put(body)
        except Exception as exc:
            raise KbsError("LogUnavailable", f"the blob store cannot take the evidence ({exc})"
                           ) from exc
        session, why = self.sessions.lookup(session_id)
        fields: dict[str, Any] = {"evidence_sha256": evidence_blob,
                                  "nonce": _cut(att.runtime_data.nonce)}
        refusals: list[Check] = []
        try:
            key: TeeKey | None = parse_tee_key(att.runtime_data.tee_pubkey)
            fields["tee_pubkey_thumbprint"] = key.thumbprint
        except KbsError as exc:
            key = None
            refusals.append(Check("kbs.tee_pubkey", "fail", exc.detail))
        if session is None:
            refusals.insert(0, Check("kbs.session", "fail", why or "no session"))
            raise self._deny("AttestationError", refusals, **fields)
        fields["tee"] = session.tee
        if not self.sessions.consume_nonce(session):
            refusals.insert(0, Check("kbs.nonce", "fail", "the session's nonce was already used "
                                     "by an earlier /attest (nonces are single-use)"))
        elif att.runtime_data.nonce != session.nonce:
            refusals.insert(0, Check("kbs.nonce", "fail", "runtime-data.nonce is not the "
                                     "nonce of this session's challenge"))
        if att.init_data is not None:
            refusals.append(Check("kbs.init_data", "fail", "init-data is not supported by "
                                  "this broker"))
        evidence = verify_evidence(
            session.tee, att, nonce=session.nonce, at=self._now(),
            collateral=self.collateral, rim_dir=self.config.rim_dir,
        )
        self._store_collateral(evidence)
        fields.update(self._evidence_fields(evidence))
        refusals += gate_failures(evidence)
        if refusals:
            raise self._deny("AttestationError", refusals, **fields)
        assert key is not None  # a key that did not parse is a refusal above
        token = self.tokens.issue({
            "sid": session.id,
            "tee-pubkey": key.public,
            "tee_pubkey_thumbprint": key.thumbprint,
            "nonce": session.nonce,
            "evidence_sha256": evidence_blob,
            **self._evidence_fields(evidence),
        })
        self.sessions.attested(session, token, key.thumbprint)
        return session, token

    def _store_collateral(self, evidence: EvidenceResult) -> None:
        for raw in evidence.collateral_used.values():
            try:
                self.log.blobs.put(raw)
            except Exception as exc:
                raise KbsError("LogUnavailable", f"the blob store cannot take the collateral "
                               f"({exc})") from exc

    @staticmethod
    def _evidence_fields(evidence: EvidenceResult) -> dict[str, Any]:
        return {
            "tee": evidence.tee,
            "insecure": evidence.insecure,
            "quote_sha256": evidence.quote_sha256,
            "report_data": evidence.report_data,
            "claims": evidence.claims,
            "measurements": evidence.measurements,
            "evidence_status": evidence.verdict.status,
        }

    # --- GET /kbs/v0/resource/<repo>/<type>/<tag> -------------------------------------------

    def resource(
        self, raw_path: bytes, query: bytes, session_id: str | None, authorization: str | None
    ) -> Release:
        requested = _cut(raw_path.decode("ascii", "replace"))
        fields: dict[str, Any] = {"resource": requested}
        session, _ = self.sessions.lookup(session_id)
        token = None
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        elif session is not None:
            token = session.token
        if not token:
            raise self._deny("TokenNotFound", [Check("kbs.token", "fail", "no Bearer token and "
                             "no attested kbs-session-id cookie")], **fields)
        try:
            claims = self.tokens.verify(token)
        except KbsError as exc:
            raise self._deny(exc.name, [Check("kbs.token", "fail", exc.detail)],
                             **fields) from None
        fields.update(self._token_fields(claims))
        checks: list[Check] = []
        if (
            session is not None
            and session.token is not None
            and session.tee_key_thumbprint != claims.get("tee_pubkey_thumbprint")
        ):
            checks.append(Check("kbs.tee_pubkey", "fail", "the token's tee-pubkey is not the "
                                "one this session attested"))
        try:
            path = resource_of_request(raw_path, query)
        except KbsError as exc:
            raise self._deny(exc.name, [*checks, Check("kbs.resource_path", "fail",
                                                       exc.detail)], **fields) from None
        resource = self.config.resource(path)
        if resource is None:
            raise self._deny("InvalidRequestPath", [*checks, Check(
                "kbs.resource_path", "fail", f"no resource {path!r} on this broker")], **fields)
        fields.update(self._resource_fields(resource))
        checks += [c for c in resource.policy.evaluate(claims.get("claims") or {})
                   if c.status == "fail"]
        if checks:
            raise self._deny("PolicyDeny", checks, **fields)
        return self._release(resource, claims, fields)

    def _release(self, resource: Resource, claims: dict[str, Any], fields: dict[str, Any]
                 ) -> Release:
        try:
            secret = resource.read_key()
            key = parse_tee_key(claims["tee-pubkey"])
            body = json.dumps(wrap_secret(secret, key), separators=(",", ":")).encode()
        except (ConfigError, KbsError, KeyError) as exc:
            raise self._deny("PluginInternalError", [Check("kbs.release", "fail",
                             f"cannot wrap the key: {exc}")], **fields) from None
        index, size = self._record(decision="released", failed=[],
                                   response_sha256=hashlib.sha256(body).hexdigest(), **fields)
        return Release(body=body, entry_index=index, checkpoint_size=size)

    @staticmethod
    def _token_fields(claims: dict[str, Any]) -> dict[str, Any]:
        keys = ("tee", "insecure", "tee_pubkey_thumbprint", "nonce", "quote_sha256",
                "report_data", "evidence_sha256", "claims", "measurements", "evidence_status")
        return {k: claims.get(k) for k in keys} | {"insecure": claims.get("insecure") is True}

    @staticmethod
    def _resource_fields(resource: Resource) -> dict[str, Any]:
        return {
            "resource": resource.path,
            "model": resource.model,
            "version": resource.version,
            "manifest_sha256": resource.manifest_sha256,
            "key_id": resource.key_id,
            "policy_sha256": resource.policy.sha256,
        }
