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
``receipt.signer``     the signer is one an attestation vouched for (``expected_signers``);
                       without that set: skip — a valid signature by an unknown key proves
                       nothing about a TEE.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .errors import ReportFormatError
from .signing import recover_ecdsa_address, verify_ed25519
from .verdict import Verdict

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


def _same_signer(a: str, b: str) -> bool:
    return a.lower().removeprefix("0x") == b.lower().removeprefix("0x")


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


def _check_signer(verdict: Verdict, address: str | None, expected_signers: set[str] | None) -> None:
    name = "receipt.signer"
    if expected_signers is None:
        verdict.add(
            name,
            "skip",
            ("no attested signing keys given: the signer is not shown to run in a TEE"),
        )
    elif address and any(_same_signer(address, s) for s in expected_signers):
        verdict.add(name, "pass", f"{address} is a signing key vouched for by an attestation")
    else:
        verdict.add(
            name,
            "fail",
            (f"{address} is not among the {len(expected_signers)} attested signing key(s)"),
        )


def verify_receipt(
    sig: dict[str, Any],
    *,
    request: bytes | None = None,
    response: bytes | None = None,
    expected_signers: set[str] | None = None,
) -> Verdict:
    """Verify a receipt (signature response) and return its verdict (role ``receipt``).

    ``request``/``response`` are the exact body bytes, when known. ``expected_signers`` are the
    signing addresses (or Ed25519 keys) that verified attestations vouched for.
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
    _check_signer(verdict, address, expected_signers)
    return verdict
