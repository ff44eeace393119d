"""``teelog model fetch``: the node side of attested key release (docs/node.md "Loading an
encrypted model").

The node speaks the Trustee KBS attestation protocol 0.4.0 ("RCAR";
``kbs/docs/kbs_attestation_protocol.md``, research/key-release.md §1) to a teelog broker:

1. ``POST /kbs/v0/auth`` ``{"version": "0.4.0", "tee", "extra-params": ""}`` → a nonce and the
   ``kbs-session-id`` cookie;
2. ``POST /kbs/v0/attest`` with ``runtime-data = {nonce, tee-pubkey}`` (an ephemeral P-256 JWK,
   ``alg`` ``ECDH-ES+A256KW``, held in memory only) and ``tee-evidence`` whose report_data is
   the KBS binding of :mod:`teelog.attestation.kbs_binding`, from the node's quote provider
   (or sample evidence, no TEE) and, with GPUs, ``additional_evidence = {"nvidia": …}``
   whose SPDM reports are over the binding's device nonce → a token;
3. ``GET /kbs/v0/resource/<repo>/<type>/<tag>`` → a flattened JWE (RFC 7516 §7.2.2) of the
   model key, unwrapped with the ephemeral key (jwcrypto).

The model is then decrypted with :func:`teelog.models.decrypt_model` (every segment verified;
all files or none), after the owner's manifest signature was checked when a key is given, and
the manifest digest is measured: on dstack it is a runtime event ``teelog-model`` in RTMR3
whose payload is the 32 bytes of the digest (as dstack's own ``compose-hash`` event carries raw
hash bytes), so every later quote of the node proves which model version it loaded. Nothing
here is a verdict: the broker verified the evidence and logged its decision; sample evidence
is reported as insecure, never as verified.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwcrypto import jwe, jwk
from jwcrypto.common import JWException
from teelog.attestation.kbs_binding import expected_gpu_nonce, expected_report_data
from teelog.models import (
    Manifest,
    ModelInputError,
    ModelIntegrityError,
    decrypt_model,
    manifest_digest,
    read_manifest,
)

from .dstack_agent import DstackAgent, DstackError
from .gpu import GpuEvidenceError, GpuEvidenceProvider, nvidia_payload
from .quote.base import QuoteError, QuoteProvider

PROTOCOL_VERSION = "0.4.0"  # what Trustee's server (and teelog's broker) demands
KEY_ALG = "ECDH-ES+A256KW"
MODEL_EVENT = "teelog-model"  # the RTMR3 runtime event naming the loaded manifest digest
MODEL_KEY_BYTES = 32  # Tink AES256_GCM_HKDF_1MB key (docs/models.md)
FETCH_PROVIDERS = ("configfs", "dstack", "sample")


class FetchError(RuntimeError):
    """The model was not loaded; the message names the step and the reason. Nothing of the
    model is left in OUT when this is raised."""


class EvidenceSource(Protocol):
    """Primary evidence over 64 bytes of report_data for one TEE type (``tee`` of ``/auth``)."""

    tee: str
    name: str

    async def primary_evidence(self, report_data: bytes) -> dict[str, Any]: ...


class SampleEvidence:
    """Trustee's ``sample`` TEE: no hardware, ``{"svn": "1", "report_data": base64}``. A broker
    accepts it only under ``allow_insecure_sample``; it proves nothing about the node."""

    tee = "sample"
    name = "sample"

    async def primary_evidence(self, report_data: bytes) -> dict[str, Any]:
        return {"svn": "1", "report_data": base64.b64encode(report_data).decode()}


class TdxEvidence:
    """TDX evidence from a node quote provider: ``{"quote": base64, "cc_eventlog": base64 |
    null}`` (guest-components attester ``tdx/mod.rs``); dstack's JSON event log goes in
    ``cc_eventlog`` so that the broker can replay RTMR0-3."""

    tee = "tdx"

    def __init__(self, provider: QuoteProvider) -> None:
        self.provider = provider
        self.name = provider.name

    async def primary_evidence(self, report_data: bytes) -> dict[str, Any]:
        try:
            evidence = await self.provider.quote(report_data)
        except QuoteError as exc:
            raise FetchError(f"no quote from {self.provider.name}: {exc}") from exc
        if evidence is None:
            raise FetchError(f"quote provider {self.provider.name} has no TEE")
        eventlog = None
        if evidence.event_log is not None:
            eventlog = base64.b64encode(json.dumps(evidence.event_log).encode()).decode()
        return {"quote": base64.b64encode(evidence.quote).decode(), "cc_eventlog": eventlog}


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What was loaded and how: the manifest and its digest, the TEE type the evidence was
    (``sample`` is insecure), the broker's log entry of the release, and what was checked
    and measured locally (human-readable)."""

    manifest: Manifest
    digest: str
    tee: str
    evidence_source: str
    entry_index: int | None
    checkpoint_size: int | None
    signature: str
    measurement: str

    @property
    def insecure(self) -> bool:
        """Sample evidence: the broker released without any TEE behind the request."""
        return self.tee == "sample"


def ephemeral_key() -> tuple[jwk.JWK, dict[str, Any]]:
    """A fresh P-256 key and its public JWK as sent in ``runtime-data.tee-pubkey``."""
    private = jwk.JWK.generate(kty="EC", crv="P-256")
    return private, {**json.loads(private.export_public()), "alg": KEY_ALG}


def _kbs_error(step: str, response: httpx.Response) -> FetchError:
    """The broker's ``{"type", "detail"}`` error as one sentence, with its log entry if any."""
    try:
        body = response.json()
        kind = str(body.get("type", "")).rsplit("/", 1)[-1] or "error"
        detail = str(body.get("detail", ""))
    except (ValueError, AttributeError):
        kind, detail = "error", response.text[:300]
    where = response.headers.get("Teelog-Entry-Index")
    logged = f" (denial logged as entry {where})" if where is not None else ""
    return FetchError(f"broker refused {step}: HTTP {response.status_code} {kind}: "
                      f"{detail}{logged}")


def _answer(response: httpx.Response, step: str, member: str) -> Any:
    """``member`` of the broker's JSON object answer to ``step`` (untrusted: checked here)."""
    try:
        body = response.json()
    except ValueError as exc:
        raise FetchError(f"broker's answer to {step} is not JSON: {exc}") from exc
    if not isinstance(body, dict) or member not in body:
        raise FetchError(f"broker's answer to {step} has no {member!r}")
    return body[member]


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    return int(value) if value is not None and value.isdigit() else None


def unwrap_key(flattened: Any, private: jwk.JWK) -> bytes:
    """The model key from the broker's flattened JWE (RFC 7516 §7.2.2), decrypted with the
    ephemeral key; exactly :data:`MODEL_KEY_BYTES` bytes."""
    if not isinstance(flattened, dict):
        raise FetchError("the resource answer is not a flattened JWE object")
    token = jwe.JWE()
    try:
        token.deserialize(json.dumps(flattened), key=private)
    except (JWException, ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"the resource JWE does not decrypt with this node's key: {exc}"
                         ) from exc
    key = token.payload
    if len(key) != MODEL_KEY_BYTES:
        raise FetchError(f"the released secret is {len(key)} bytes, not a "
                         f"{MODEL_KEY_BYTES}-byte model key")
    return key


async def device_evidence(
    gpus: GpuEvidenceProvider | None, nonce: str, public: dict[str, Any]
) -> str:
    """``additional_evidence`` for the challenge ``nonce``: ``""`` without GPUs, else
    ``{"nvidia": <nvidia payload>}`` whose SPDM reports are taken over the device nonce of
    the KBS binding (:func:`teelog.attestation.kbs_binding.expected_gpu_nonce`, Trustee's
    ``regularize_data`` of ``{nonce, tee-pubkey}``), as the broker checks it. The string is
    then itself bound by the quote's report_data."""
    if gpus is None:
        return ""
    gpu_nonce = expected_gpu_nonce(nonce, public)
    try:
        reports = await gpus.evidence(gpu_nonce)
        if not reports:
            return ""
        return json.dumps({"nvidia": json.loads(nvidia_payload(gpu_nonce, reports))})
    except GpuEvidenceError as exc:
        raise FetchError(f"GPU evidence: {exc}") from exc


async def request_key(
    client: httpx.AsyncClient,
    resource: str,
    evidence: EvidenceSource,
    gpus: GpuEvidenceProvider | None = None,
) -> tuple[bytes, int | None, int | None]:
    """Run auth, attest and resource against the broker ``client`` points at, with the GPU
    evidence of ``gpus`` when given; return the model key and the release's
    ``Teelog-Entry-Index`` and ``Teelog-Checkpoint-Size``."""
    private, public = ephemeral_key()
    try:
        r = await client.post("/kbs/v0/auth", json={
            "version": PROTOCOL_VERSION, "tee": evidence.tee, "extra-params": ""})
        if r.status_code != 200:
            raise _kbs_error("auth", r)
        nonce = _answer(r, "auth", "nonce")
        if not isinstance(nonce, str):
            raise FetchError("broker's challenge nonce is not a string")
        additional = await device_evidence(gpus, nonce, public)
        report_data = expected_report_data(nonce, public, additional)
        body = {
            "runtime-data": {"nonce": nonce, "tee-pubkey": public},
            "tee-evidence": {
                "primary_evidence": await evidence.primary_evidence(report_data),
                "additional_evidence": additional,
            },
        }
        r = await client.post("/kbs/v0/attest", json=body)
        if r.status_code != 200:
            raise _kbs_error("attestation", r)
        token = _answer(r, "attestation", "token")
        if not isinstance(token, str):
            raise FetchError("broker's attestation token is not a string")
        path = urllib.parse.quote(resource, safe="/")
        r = await client.get(f"/kbs/v0/resource/{path}",
                             headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 200:
            raise _kbs_error(f"the key of {resource}", r)
        try:
            flattened = r.json()
        except ValueError as exc:
            raise FetchError(f"broker's resource answer is not JSON: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"broker at {client.base_url} unreachable: {exc!r}") from exc
    return (unwrap_key(flattened, private), _header_int(r, "Teelog-Entry-Index"),
            _header_int(r, "Teelog-Checkpoint-Size"))


def _remove_model(out_dir: Path, manifest: Manifest) -> None:
    """Delete the decrypted files (and the directories left empty) after a later step failed."""
    for entry in manifest.files:
        path = out_dir.joinpath(*entry.path.split("/"))
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        parent = path.parent
        while parent != out_dir and parent.is_relative_to(out_dir):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


async def fetch_model(
    broker_url: str,
    resource: str,
    encrypted: Path,
    out: Path,
    evidence: EvidenceSource,
    *,
    owner_vkey: Ed25519PublicKey | None = None,
    measure_with: DstackAgent | None = None,
    gpus: GpuEvidenceProvider | None = None,
    timeout: float = 30.0,
) -> FetchResult:
    """Fetch the key of ``resource``, decrypt ``encrypted`` into ``out`` and measure the
    manifest digest with ``measure_with`` (the dstack agent) when given.

    The manifest (and its owner signature) is checked before the key is asked for, so a
    forged manifest or an unusable OUT costs no release. Raises :class:`FetchError`, or
    :class:`teelog.models.ModelInputError` for unusable directories.
    """
    manifest = read_manifest(encrypted)
    if out.exists() and (not out.is_dir() or any(os.scandir(out))):
        # Checked before the key is asked for: a release that cannot be used is not requested.
        raise ModelInputError(f"{out} is not an empty directory")
    if owner_vkey is not None:
        try:
            manifest.verify_signature(owner_vkey)
        except ModelIntegrityError as exc:
            raise FetchError(f"manifest signature: {exc}") from exc
        signature = "checked: signed by the owner's key"
    else:
        signature = ("not checked (no --owner-vkey)" if manifest.signature
                     else "unsigned, not checked")
    async with httpx.AsyncClient(base_url=broker_url, timeout=timeout) as client:
        key, index, size = await request_key(client, resource, evidence, gpus)
    try:
        decrypt_model(encrypted, out, key)
    except ModelIntegrityError as exc:
        raise FetchError(f"decryption: {exc}; nothing was written to {out}") from exc
    digest = manifest_digest(manifest)
    if measure_with is not None:
        try:
            await measure_with.emit_event(MODEL_EVENT, bytes.fromhex(digest))
        except DstackError as exc:
            _remove_model(out, manifest)  # an unmeasured model must not be served
            raise FetchError(f"measuring the manifest digest into RTMR3 failed: {exc}; the "
                             f"decrypted model was removed from {out}") from exc
        measurement = f"RTMR3 runtime event {MODEL_EVENT} = {digest}"
    elif evidence.tee == "sample":
        measurement = "not measured: sample evidence, no TEE"
    else:
        measurement = (f"not measured: quote provider {evidence.name} has no runtime event "
                       f"log (only dstack's agent extends RTMR3)")
    return FetchResult(manifest, digest, evidence.tee, evidence.name, index, size, signature,
                       measurement)


