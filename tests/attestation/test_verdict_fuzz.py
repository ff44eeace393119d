"""Hostile evidence never changes a verdict for the better and never stops a verifier.

Every verifier is run on mutated copies of real inputs (tests/data, at their pinned times): the
verdict is ``failed`` or the original's, never an exception, never an upgrade. An exception on
the node's evidence fails the check that was running, and the other checks still run.
"""

from __future__ import annotations

import json
from typing import Any

from attestation_data import (
    AT_NEAR_MODEL,
    AT_V4_UPTODATE,
    NEAR_BUNDLE,
    NEAR_NONCE,
    REPORTS,
    collateral_doc,
    near_bundle,
    quote_bytes,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from teelog.attestation import AttestationInputError, verify_quote, verify_receipt, verify_report
from teelog.attestation.report import verify_gpu_payload
from teelog.attestation.verdict import STATUSES
from teelog.entries.verdict import verify_report_bytes

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL = near_bundle()["model_attestations"][0]
MODEL_COLL = collateral_doc("dcapqvl_tdx_v5")
GPU = json.loads((NEAR_BUNDLE.parent / "model0_nvidia_payload.json").read_text())
V4 = quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")
V4_COLL = collateral_doc("dcapqvl_tdx_v4_uptodate")
V4_SIGNED = 48 + 584  # header ‖ TD report 1.0: what the quote signature covers
SIGNATURE = json.loads((REPORTS / "nearai_docs_signature_samples.json").read_text())["samples"][0][
    "signature_response"
]


def rank(status: str) -> int:
    """Position in STATUSES: a larger rank is a worse verdict."""
    return STATUSES.index(status)


def string_leaves(doc: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every string in a JSON document."""
    if isinstance(doc, str):
        return [path]
    if isinstance(doc, dict):
        items: Any = doc.items()
    else:
        items = enumerate(doc) if isinstance(doc, list) else []
    return [p for k, v in items for p in string_leaves(v, (*path, k))]


def replace_at(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = replace_at(doc[path[0]], path[1:], value)
    return copy


def get_at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def edited(draw, text: str) -> str:
    """``text`` with one character changed, a cut, or a few characters inserted."""
    kind = draw(st.sampled_from(["change", "cut", "insert"]))
    i = draw(st.integers(0, max(len(text) - 1, 0)))
    if kind == "cut":
        return text[:i]
    alphabet = st.sampled_from("0123456789abcdefABCDEF\"{}[],:\\ \u0000\u00e9")
    if kind == "insert":
        return text[:i] + draw(st.text(alphabet, min_size=1, max_size=3)) + text[i:]
    new = draw(alphabet.filter(lambda c: not text or c != text[i]))
    return text[:i] + new + text[i + 1 :]


# Every string of the model attestation except the quote: mutations of the quote are fuzzed on
# their own below (its signed part must fail; its PCK chain is what finds the collateral).
EVIDENCE = [p for p in string_leaves(MODEL) if p[0] != "intel_quote"]
ORIGINAL_RESULT = verify_report(MODEL, nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=MODEL_COLL)
ORIGINAL = ORIGINAL_RESULT.status
ORIGINAL_CHECKS = [c.status for c in ORIGINAL_RESULT.attestations[0].checks]


@st.composite
def mutated_model(draw) -> tuple[tuple, dict]:
    path = draw(st.sampled_from(EVIDENCE))
    return path, replace_at(MODEL, path, draw(edited(get_at(MODEL, path))))


def test_the_originals_verify():
    assert ORIGINAL == "verified"
    assert verify_gpu_payload(GPU, nonce=NEAR_NONCE, at=AT_NEAR_MODEL).status == "verified"
    assert verify_quote(V4, at=AT_V4_UPTODATE, collateral=V4_COLL).status == "verified"


@FUZZ
@given(mutated_model())
def test_a_mutated_report_is_failed_or_unchanged_never_better(case):
    path, doc = case
    result = verify_report(doc, nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=MODEL_COLL)
    assert result.status in ("failed", ORIGINAL), path
    if result.status == ORIGINAL:  # then the verdict is the original's, check by check
        assert [c.status for c in result.attestations[0].checks] == ORIGINAL_CHECKS


@FUZZ
@given(st.integers(0, V4_SIGNED - 1), st.integers(1, 255))
def test_a_quote_changed_in_its_signed_part_fails(offset, mask):
    data = bytearray(V4)
    data[offset] ^= mask
    try:
        result = verify_quote(bytes(data), at=AT_V4_UPTODATE, collateral=V4_COLL)
    except AttestationInputError:
        return  # not a quote any more (header fields): unusable input, never a verdict
    assert result.status == "failed"


@FUZZ
@given(edited(json.dumps(GPU)))
def test_a_mutated_gpu_payload_is_failed_or_unchanged(text):
    result = verify_gpu_payload(text, nonce=NEAR_NONCE, at=AT_NEAR_MODEL)
    assert result.status in ("failed", "verified")


@FUZZ
@given(st.sampled_from(["text", "signature", "signing_address"]), st.data())
def test_a_mutated_signature_response_never_verifies_better(name, data):
    original = verify_receipt(SIGNATURE).status
    doc = {**SIGNATURE, name: data.draw(edited(SIGNATURE[name]))}
    verdict = verify_receipt(doc)
    assert verdict.status in ("failed", original)
    assert rank(verdict.status) >= rank(original)


@FUZZ
@given(mutated_model(), st.booleans())
def test_the_collector_logs_mutated_report_bytes_as_failed_or_unchanged(case, cut):
    _path, doc = case
    raw = json.dumps(doc).encode("utf-8", "surrogatepass")
    if cut:  # and bytes that are no longer JSON at all
        raw = raw[: len(raw) // 2]
    verification = verify_report_bytes(MODEL_COLL_SOURCE, raw, NEAR_NONCE, _at())
    statuses = {a["status"] for a in verification.attestations}
    assert statuses <= {"failed", ORIGINAL}
    if cut:
        assert verification.attestations[0]["checks"][0]["name"] == "report.format"


def _at():
    from teelog.attestation.tdx import as_datetime

    return as_datetime(AT_NEAR_MODEL)


def _collateral():
    from teelog.attestation import Collateral

    return Collateral([MODEL_COLL])


MODEL_COLL_SOURCE = _collateral()


def _bad_version(der: bytes) -> bytes:
    """``der`` with its X.509 version field (``[0] INTEGER 2``, i.e. v3) set to 7."""
    marker = bytes.fromhex("a003020102")
    i = der.index(marker)
    return der[: i + 4] + b"\x07" + der[i + 5 :]


def test_a_gpu_certificate_with_a_bad_version_field_fails_its_check_and_the_rest_still_run():
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    payload = json.loads(MODEL["nvidia_payload"])
    first = payload["evidence_list"][0]
    pem = base64.b64decode(first["certificate"])
    certs = x509.load_pem_x509_certificates(pem)
    leaf = _bad_version(certs[0].public_bytes(Encoding.DER))
    bad_pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(leaf) + (
        b"-----END CERTIFICATE-----\n"
    ) + b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:])
    first["certificate"] = base64.b64encode(bad_pem).decode()
    doc = {**MODEL, "nvidia_payload": json.dumps(payload)}
    result = verify_report(doc, nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=MODEL_COLL)
    verdict = result.attestations[0]
    assert result.status == "failed"
    broken = verdict.check("gpu.evidence[0]")
    assert broken is not None and broken.status == "fail"
    assert "version" in broken.detail.lower()
    # Every other check still ran: the TDX checks and the seven other GPUs pass.
    assert verdict.check("tdx.quote").status == "pass"
    assert verdict.check("eventlog.rtmr").status == "pass"
    assert all(verdict.check(f"gpu.evidence[{i}]").status == "pass" for i in range(1, 8))
    # The collector logs the same failed verdict with all its checks, not one skip.
    logged = verify_report_bytes(MODEL_COLL_SOURCE, json.dumps(doc).encode(), NEAR_NONCE, _at())
    assert logged.attestations[0]["status"] == "failed"
    assert len(logged.attestations[0]["checks"]) == len(verdict.checks)
