"""The KBS runtime-data binding (research/key-release.md §1.2) against published vectors."""

from __future__ import annotations

import hashlib
import json

import rfc8785
from teelog.attestation.kbs_binding import binding_check, expected_gpu_nonce, expected_report_data

# Our own vector (research/key-release.md §1.2): a CPU-only TDX guest.
NONCE = "2bDDAMhW8bAgH7WNH1pzCsUlKSCefH7wS6m6Lg6N8s0="
JWK = {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
       "x": "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis",
       "y": "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}


def test_trustee_jcs_sha384_vector():
    # Trustee's unit test: JCS of {"b":1,"a":"test","c":{"d":"e"}} → SHA-384 e71ce8e70d81…a78870c3
    digest = hashlib.sha384(rfc8785.dumps({"b": 1, "a": "test", "c": {"d": "e"}})).hexdigest()
    assert digest.startswith("e71ce8e70d81") and digest.endswith("a78870c3")


def test_our_cpu_only_tdx_vector_is_sha384_then_sixteen_zero_bytes():
    rd = expected_report_data(NONCE, JWK, "")
    assert len(rd) == 64 and rd[48:] == bytes(16)
    assert rd[:48].hex().startswith("4429e7b2") and rd[:48].hex().endswith("c303e8")


def test_jcs_here_is_sorted_compact_json():
    # For these inputs RFC 8785 is sorted keys and no spaces: the rule can be recomputed
    # without the library.
    text = json.dumps({"additional-evidence": "", "nonce": NONCE, "tee-pubkey": JWK},
                      sort_keys=True, separators=(",", ":"))
    assert expected_report_data(NONCE, JWK, "")[:48] == hashlib.sha384(text.encode()).digest()


def test_gpu_nonce_is_the_first_32_bytes_of_the_device_hash():
    text = json.dumps({"nonce": NONCE, "tee-pubkey": JWK}, sort_keys=True, separators=(",", ":"))
    assert expected_gpu_nonce(NONCE, JWK) == hashlib.sha384(text.encode()).digest()[:32]


def test_binding_passes_only_for_the_exact_fields():
    good = expected_report_data(NONCE, JWK, "")
    assert binding_check(good, NONCE, JWK, "").status == "pass"
    swapped = {**JWK, "x": JWK["y"], "y": JWK["x"]}
    assert binding_check(good, NONCE, swapped, "").status == "fail"
    assert binding_check(good, NONCE, JWK, '{"nvidia":{}}').status == "fail"
    assert binding_check(good, "AAAA", JWK, "").status == "fail"


def test_non_zero_padding_is_refused_and_said_so():
    padded = expected_report_data(NONCE, JWK, "")[:48] + b"\x00" * 15 + b"\x01"
    check = binding_check(padded, NONCE, JWK, "")
    assert check.status == "fail" and "padding" in check.detail
