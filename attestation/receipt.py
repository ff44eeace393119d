"""Response receipts: the signature a node publishes for every response it served.

A receipt is the vllm-proxy ``GET /v1/signature/{chat_id}`` answer ``{text, signature,
signing_address, signing_algo}`` (docs/node.md "What is signed"). The signed text is
``sha256hex(request) ":" sha256hex(response)``, or with a model prefix
``model ":" req ":" resp`` (NEAR direct endpoints, Rust proxy); verifiers split on ``:`` and
take the last two parts.

Checks (role ``receipt``):

``receipt.signature``  the signature over ``text`` is valid and made by ``signing_address``
                       (EIP-191 secp256k1 recovery compared case-insensitively, or Ed25519).
``receipt.hashes``     with the request/response bytes: their SHA-256 equal the text's hashes;
                       without them: skip, not required.
``receipt.signer``     the signer is one an attestation vouched for (:func:`decide_signer`,
                       the one definition, also used by the collector for every receipt it
                       logs); without any attested keys: skip — a valid signature by an
                       unknown key proves nothing about a TEE.

An attestation *vouches* for the signing key it names when its status is ``verified`` or
``warning`` (:data:`VOUCHING_STATUSES`); a key named only by attestations that did not verify is
as trustworthy as they are (docs/entries.md, ``receipt`` v1, ``attestation_index``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ReportFormatError
from .signing import recover_ecdsa_address, verify_ed25519
from .verdict import Check, CheckStatus, Verdict, malformed_evidence

# The statuses of an attestation that vouch for the signing key it names.
VOUCHING_STATUSES = frozenset({"verified", "warning"})
# A key named only by attestations that did not verify: a node without a TEE (unverifiable)
# leaves its receipts unverifiable; a failed attestation fails them.
_NAMED_ONLY: dict[str, CheckStatus] = {"unverifiable": "skip", "failed": "fail"}

_HASH = re.compile(r"^[0-9a-f]{64}$")


def text_of_hashes(request_sha256: str, response_sha256: str, model: str | None = None) -> str:
    """The text a node signs, from the two SHA-256 hex digests: ``[model:]request:response``
    (the producer, ``teelog node``, and :func:`parse_signed_text` agree on it by using this)."""
    hashes = f"{request_sha256}:{response_sha256}"
    return f"{model}:{hashes}" if model else hashes


def signed_text(request: bytes, response: bytes, model: str | None = None) -> str:
    """The text a node signs for one exchange: ``[model:]sha256(request):sha256(response)``."""
    return text_of_hashes(
        hashlib.sha256(request).hexdigest(), hashlib.sha256(response).hexdigest(), model
    )


def parse_signed_text(text: str) -> tuple[str | None, str, str]:
    """Split a signed text into ``(model or None, request hash, response hash)``.

    The model may itself contain ``:``; the hashes are the last two parts, lowercase hex.
    Raises ``ValueError`` when the text does not end in two SHA-256 hex digests.
    """
    parts = text.split(":")
    if len(parts) < 2 or not (_HASH.match(parts[-2]) and _HASH.match(parts[-1])):
        raise ValueError("signed text does not end in <sha256 hex>:<sha256 hex>")
    model = ":".join(parts[:-2]) or None
    return model, parts[-2], parts[-1]


def _algo(sig: dict[str, Any]) -> str | None:
    algo = sig.get("signing_algo")
    if isinstance(algo, str) and algo:
        return algo.lower()
    signature = str(sig.get("signature", ""))
    if signature.startswith("0x") and len(signature) == 132:
        return "ecdsa"
    if len(signature) == 128:
        return "ed25519"
    return None


def signer_key(address: str) -> str:
    """The form in which signing keys compare: lowercase, without ``0x`` (Ethereum addresses
    compare case-insensitively, docs/entries.md; Ed25519 keys are hex)."""
    return address.lower().removeprefix("0x")


def _same_signer(a: str, b: str) -> bool:
    return signer_key(a) == signer_key(b)


@dataclass(frozen=True, slots=True)
class SignerRecord:
    """What a node's attestations said about one signing key.

    ``named_*``: the latest attestation naming the key, whatever its status. ``vouched_*``: the
    latest one naming it whose status vouches (``verified`` or ``warning``), ``None`` if none
    did. Indexes are log indexes, ``None`` for attestations that are not in a log (offline).
    """

    named_status: str
    named_index: int | None = None
    vouched_status: str | None = None
    vouched_index: int | None = None

    @property
    def vouched(self) -> bool:
        return self.vouched_status in VOUCHING_STATUSES


@dataclass(frozen=True, slots=True)
class SignerDecision:
    """The ``receipt.signer`` check and the attestations it rests on (docs/entries.md):
    ``attestation_index`` is the latest vouching attestation of the chosen signer (``None`` when
    none vouches), ``named_index`` the latest attestation that named it at all."""

    check: Check
    attestation_index: int | None
    named_index: int | None


def _order(index: int | None) -> int:
    """Sort key of a log index: later is greater; unknown (offline) before every index."""
    return -1 if index is None else index


def _where(index: int | None) -> str:
    return f"attestation #{index}" if index is not None else "an attestation"


def decide_signer(
    signers: Mapping[str, SignerRecord],
    verified: Sequence[tuple[str, str]],
    *,
    owner: str | None = None,
) -> SignerDecision:
    """``receipt.signer``: is a key whose signature verified vouched for by an attestation?

    ``signers`` maps :func:`signer_key` of each key the node's attestations named to what they
    said; ``verified`` lists ``(algo, signing_address)`` of the receipt's signatures that
    verified. Of several signers the one with the best record decides: a vouching
    ``verified`` attestation over a ``warning`` one, then the latest. Outcomes:

    - vouched for by a ``verified`` attestation: ``pass``; by a ``warning`` one: ``warn``;
    - named only by attestations that did not verify: ``skip`` if the latest was
      ``unverifiable`` (a node without a TEE), ``fail`` if it ``failed``;
    - named by no attestation, or no signature verified: ``fail``.
    """
    name = "receipt.signer"
    if not verified:
        return SignerDecision(Check(name, "fail", "no signature verified"), None, None)
    found: list[tuple[str, str, SignerRecord]] = []
    unnamed: list[str] = []
    for algo, address in verified:
        record = signers.get(signer_key(address))
        if record is not None:
            found.append((algo, address, record))
        else:
            unnamed.append(f"{algo} {address}")
    vouched = [f for f in found if f[2].vouched]
    if vouched:
        algo, address, record = max(
            vouched,
            key=lambda f: (f[2].vouched_status == "verified", _order(f[2].vouched_index)),
        )
        detail = f"{algo} signer {address} vouched for by {_where(record.vouched_index)}"
        if unnamed:
            detail += "; not attested: " + ", ".join(unnamed)
        if record.vouched_status == "verified":
            check = Check(name, "pass", detail)
        else:
            check = Check(
                name, "warn", detail + f" (that attestation's status is {record.vouched_status})"
            )
        return SignerDecision(check, record.vouched_index, record.named_index)
    if found:
        algo, address, record = max(found, key=lambda f: _order(f[2].named_index))
        latest = f"#{record.named_index}" if record.named_index is not None else "one"
        detail = (
            f"{algo} signer {address} is named only by attestations that did not verify "
            f"(latest {latest}: {record.named_status})"
        )
        status = _NAMED_ONLY.get(record.named_status, "fail")
        return SignerDecision(Check(name, status, detail), None, record.named_index)
    whose = f"of node {owner!r} " if owner else ""
    detail = f"no attestation {whose}names " + ", ".join(unnamed)
    return SignerDecision(Check(name, "fail", detail), None, None)


def _check_signature(
    verdict: Verdict, text: str, signature: str, address: str | None, algo: str | None
) -> None:
    name = "receipt.signature"
    if not address:
        verdict.add(name, "fail", "receipt names no signing_address")
        return
    try:
        if algo == "ecdsa":
            recovered = recover_ecdsa_address(text, signature)
            if _same_signer(recovered, address):
                verdict.add(name, "pass", f"EIP-191 secp256k1 signature by {recovered}")
            else:
                verdict.add(
                    name,
                    "fail",
                    (
                        f"signature recovers to {recovered}, not the claimed {address}: "
                        "forged, or made over another text"
                    ),
                )
        elif algo == "ed25519":
            if verify_ed25519(text, signature, address):
                verdict.add(name, "pass", f"Ed25519 signature by {address.lower()}")
            else:
                verdict.add(name, "fail", f"Ed25519 signature is not valid for key {address}")
        else:
            verdict.add(name, "fail", f"unknown signing_algo {algo!r}")
    except ValueError as exc:  # malformed signature/key; UnicodeEncodeError included
        verdict.add(name, "fail", f"signature unusable: {exc}")
    except Exception as exc:  # anything else the signature bytes provoke: malformed evidence
        verdict.checks.append(malformed_evidence(name, exc))


def _check_hashes(
    verdict: Verdict, text: str, request: bytes | None, response: bytes | None
) -> None:
    name = "receipt.hashes"
    try:
        _, req_hash, resp_hash = parse_signed_text(text)
    except ValueError as exc:
        verdict.add(name, "fail", f"{exc}: {text[:120]!r}")
        return
    if request is None and response is None:
        verdict.add(
            name,
            "skip",
            "request and response bodies not given: hashes not compared",
            required=False,
        )
        return
    wrong, matched = [], []
    for what, body, claimed in (("request", request, req_hash), ("response", response, resp_hash)):
        if body is None:
            continue
        actual = hashlib.sha256(body).hexdigest()
        (matched if actual == claimed else wrong).append(
            f"{what} sha256 {actual}" + ("" if actual == claimed else f" != signed {claimed}")
        )
    if wrong:
        verdict.add(name, "fail", "; ".join(wrong))
    elif request is None or response is None:
        missing = "request" if request is None else "response"
        verdict.add(name, "skip", f"{matched[0]} matches; {missing} body not given", required=False)
    else:
        verdict.add(name, "pass", "request and response bodies match the signed hashes")


def _check_signer(
    verdict: Verdict, address: str | None, signers: Mapping[str, SignerRecord] | None
) -> None:
    name = "receipt.signer"
    if signers is None:
        verdict.add(
            name,
            "skip",
            ("no attested signing keys given: the signer is not shown to run in a TEE"),
        )
        return
    signature = verdict.check("receipt.signature")
    verified = (
        [(verdict.signing_algo or "?", address)]
        if address and signature is not None and signature.status == "pass"
        else []
    )
    verdict.checks.append(decide_signer(signers, verified).check)


def vouched_signers(addresses: set[str] | frozenset[str]) -> dict[str, SignerRecord]:
    """Records for keys that verified attestations (not in a log) vouched for."""
    return {
        signer_key(a): SignerRecord(named_status="verified", vouched_status="verified")
        for a in addresses
    }


def verify_receipt(
    sig: dict[str, Any],
    *,
    request: bytes | None = None,
    response: bytes | None = None,
    expected_signers: set[str] | None = None,
    signers: Mapping[str, SignerRecord] | None = None,
) -> Verdict:
    """Verify a receipt (signature response) and return its verdict (role ``receipt``).

    ``request``/``response`` are the exact body bytes, when known. ``expected_signers`` are the
    signing addresses (or Ed25519 keys) that verified attestations vouched for; ``signers``
    says more: what attestations said about each key (:class:`SignerRecord`), so that a key
    named only by an unverifiable attestation is told from an unknown one. Give at most one.
    Raises :class:`ReportFormatError` when ``sig`` has no string ``text`` and ``signature``.
    """
    if not isinstance(sig, dict):
        raise ReportFormatError(f"a receipt must be a JSON object, not {type(sig).__name__}")
    text, signature = sig.get("text"), sig.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str):
        raise ReportFormatError("a receipt needs string fields 'text' and 'signature'")
    address = sig.get("signing_address")
    address = address if isinstance(address, str) else None
    algo = _algo(sig)
    try:
        model = parse_signed_text(text)[0]
    except ValueError:
        model = None
    verdict = Verdict(
        role="receipt",
        model=model
        if model is not None
        else (sig["model"] if isinstance(sig.get("model"), str) else None),
        signing_address=address,
        signing_algo=algo,
    )
    _check_signature(verdict, text, signature, address, algo)
    _check_hashes(verdict, text, request, response)
    if expected_signers is not None:
        if signers is not None:
            raise ValueError("give expected_signers or signers, not both")
        signers = vouched_signers(expected_signers)
    _check_signer(verdict, address, signers)
    return verdict
