"""Trustee KBS attestation protocol 0.4.0 messages ("RCAR": request, challenge, attestation,
response), as dataclasses read from untrusted JSON.

Field names are the protocol's, with its mixed spellings: kebab-case outer keys
(``extra-params``, ``runtime-data``, ``tee-evidence``, ``tee-pubkey``, ``init-data``) and
snake_case inside ``tee-evidence`` (``primary_evidence``, ``additional_evidence``) (Trustee
``kbs/docs/kbs_attestation_protocol.md``; kbs-types ``src/lib.rs``; research/key-release.md
§1.1). Every reader raises :class:`~teelog.broker.errors.KbsError` ``SerdeError`` naming the
field that was wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import rfc8785

from .errors import KbsError

PROTOCOL_VERSION = "0.4.0"  # Trustee's server demands exactly this (kbs backend.rs)
NONCE_BYTES = 32
# TEE types teelog verifies; Trustee knows more (kbs-types ``Tee``), which are refused clearly.
SUPPORTED_TEES = ("tdx", "sample")


def _serde(detail: str) -> KbsError:
    return KbsError("SerdeError", detail)


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object of a request body, or ``SerdeError``."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _serde(f"{what} body is not JSON: {exc}") from exc
    except RecursionError:
        raise _serde(f"{what} body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise _serde(f"{what} body must be a JSON object")
    return doc


def _string(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise _serde(f"{where}{key} must be a string")
    return value


def _object(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise _serde(f"{where}{key} must be a JSON object")
    return value


def b64decode_strict(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4, padded), as Trustee's nonces and evidence are encoded."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise _serde(f"{what} is not standard base64: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Request:
    """``POST /kbs/v0/auth`` body: ``{"version", "tee", "extra-params"}``."""

    version: str
    tee: str
    extra_params: Any

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Request:
        return cls(
            version=_string(doc, "version", ""),
            tee=_string(doc, "tee", ""),
            extra_params=doc.get("extra-params"),
        )


@dataclass(frozen=True, slots=True)
class Challenge:
    """The answer to ``/auth``: a 32-byte nonce in standard base64 and ``extra-params`` ``""``
    (Trustee sends the empty string for every TEE but IBM SE)."""

    nonce: str
    extra_params: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"nonce": self.nonce, "extra-params": self.extra_params}


@dataclass(frozen=True, slots=True)
class RuntimeData:
    """``runtime-data``: the challenge nonce and the TEE's public key (a JWK, as sent)."""

    nonce: str
    tee_pubkey: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TeeEvidence:
    """``tee-evidence``: ``primary_evidence`` (per TEE) and ``additional_evidence`` (a JSON
    string of device evidence, ``""`` when there is none)."""

    primary_evidence: dict[str, Any]
    additional_evidence: str


@dataclass(frozen=True, slots=True)
class Attestation:
    """``POST /kbs/v0/attest`` body."""

    runtime_data: RuntimeData
    tee_evidence: TeeEvidence
    init_data: Any = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Attestation:
        runtime = _object(doc, "runtime-data", "")
        evidence = _object(doc, "tee-evidence", "")
        additional = evidence.get("additional_evidence", "")
        if not isinstance(additional, str):
            raise _serde("tee-evidence.additional_evidence must be a string (JSON text or \"\")")
        try:  # the binding hashes runtime-data as RFC 8785 JSON: it must have one
            rfc8785.dumps(runtime)
        except (rfc8785.CanonicalizationError, RecursionError) as exc:
            raise _serde(f"runtime-data has no RFC 8785 form (integers beyond 2^53, NaN, or "
                         f"too deep): {exc}") from None
        return cls(
            runtime_data=RuntimeData(
                nonce=_string(runtime, "nonce", "runtime-data."),
                tee_pubkey=_object(runtime, "tee-pubkey", "runtime-data."),
            ),
            tee_evidence=TeeEvidence(
                primary_evidence=_object(evidence, "primary_evidence", "tee-evidence."),
                additional_evidence=additional,
            ),
            init_data=doc.get("init-data"),
        )


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """The answer to ``/attest``: ``{"token": <JWT>}``."""

    token: str

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token}
