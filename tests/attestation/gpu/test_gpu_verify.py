"""verify_gpu_evidence on every real fixture, and the adversarial corpus built from them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from gpu_helpers import (
    AT,
    LEGACY,
    NEAR_NONCE,
    NVAT,
    NVLOCAL,
    flip,
    hex_sample,
    near_payload,
    near_payload_text,
    report_bytes,
    statuses,
    with_report,
)
from teelog.attestation.gpu import verify_gpu_evidence
from teelog.attestation.gpu.spdm import parse_attestation_report
from teelog.attestation.measurements import GpuMeasurement

PER_GPU = ("gpu.evidence", "gpu.chain", "gpu.fwid", "gpu.nonce", "gpu.rim")


def test_near_bundle_eight_gpus_verify_with_the_request_nonce():
    result = verify_gpu_evidence(near_payload_text(), expected_nonce=NEAR_NONCE, at=AT)
    assert result.status == "verified"
    names = [c.name for c in result.checks]
    assert names == [f"{n}[{i}]" for i in range(8) for n in PER_GPU] + ["gpu.nras"]
    got = statuses(result)
    for i in range(8):
        for name in ("gpu.evidence", "gpu.chain", "gpu.fwid", "gpu.nonce"):
            assert got[f"{name}[{i}]"] == "pass"
        assert got[f"gpu.rim[{i}]"] == "skip"
    assert got["gpu.nras"] == "skip"
    assert result.gpus == [
        GpuMeasurement(i, "HOPPER", "570.172.08", "96.00.cf.00.02") for i in range(8)
    ]
    assert len({d.ueid for d in result.devices}) == 8
    assert {d.chip for d in result.devices} == {"GH100"}


def test_near_bundle_without_expected_nonce_is_unverifiable_not_verified():
    result = verify_gpu_evidence(near_payload_text(), expected_nonce=None, at=AT)
    assert result.status == "unverifiable"
    assert statuses(result)["gpu.nonce[0]"] == "skip"


def test_legacy_hex_encoded_payload_verifies_with_its_keccak_nonce():
    text = (LEGACY / "nvidia_payload.json").read_text()
    nonce = bytes.fromhex(json.loads(text)["nonce"])
    result = verify_gpu_evidence(text, expected_nonce=nonce, at=AT)
    assert result.status == "verified"
    assert result.devices[0].evidence_encoding == "base64-hex"
    assert result.gpus[0].driver_version == "550.135"


def test_blackwell_sample_verifies_fwid_from_the_dice_tcb_info_extension():
    doc = hex_sample("blackwellAttestationReport.txt", "blackwellCertChain.txt")
    nonce = parse_attestation_report(bytes.fromhex(doc["evidence_list"][0]["evidence"])).nonce
    result = verify_gpu_evidence(doc, expected_nonce=nonce, at=AT)
    assert result.status == "verified"
    assert statuses(result)["gpu.fwid[0]"] == "pass"
    assert result.gpus[0].arch == "BLACKWELL"  # from the leaf's GB100, no payload arch
    assert result.devices[0].chip == "GB100"


def test_old_driver_without_fwid_skips_fwid_without_lowering_the_status():
    doc = hex_sample("hopper_535.86.09_AttestationReport.txt", "hopper_535.86.09_CertChain.txt")
    nonce = parse_attestation_report(bytes.fromhex(doc["evidence_list"][0]["evidence"])).nonce
    result = verify_gpu_evidence(doc, expected_nonce=nonce, at=AT)
    fwid = next(c for c in result.checks if c.name == "gpu.fwid[0]")
    assert (fwid.status, fwid.required) == ("skip", False)
    assert result.status == "verified"


def test_nv_local_verifier_sample_and_nvat_multi_gpu_verify():
    doc = hex_sample(
        "hopper_550.90.07_AttestationReport.txt", "hopper_550.90.07_CertChain.txt", NVLOCAL
    )
    nonce = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
    assert verify_gpu_evidence(doc, expected_nonce=nonce, at=AT).status == "verified"
    multi = (NVAT / "multi_gpu_hopper.json").read_text()
    nonce = bytes.fromhex(json.loads(multi)[0]["nonce"])
    result = verify_gpu_evidence(multi, expected_nonce=nonce, at=AT)
    assert result.status == "verified"
    assert len(result.gpus) == 4


# --- adversarial corpus ---------------------------------------------------------------------


def _report_offsets(raw: bytes) -> dict[str, int]:
    record_len = int.from_bytes(raw[42:45], "little")
    after = 45 + record_len
    return {
        "request-nonce": 10,
        "measurement": 45 + 7 + 55 * 3,
        "responder-nonce": after + 5,
        "driver-version": raw.index(b"570.172.08"),
        "signature": len(raw) - 20,
    }


@pytest.mark.parametrize(
    "region", ["request-nonce", "measurement", "responder-nonce", "driver-version", "signature"]
)
def test_a_flipped_byte_anywhere_in_the_report_fails_the_signature(region):
    doc = near_payload()
    raw = report_bytes(doc, 3)
    result = verify_gpu_evidence(
        with_report(doc, flip(raw, _report_offsets(raw)[region]), 3),
        expected_nonce=NEAR_NONCE,
        at=AT,
    )
    got = statuses(result)
    assert got["gpu.evidence[3]"] == "fail"
    assert got["gpu.evidence[2]"] == "pass"
    assert result.status == "failed"


def test_swapped_chain_from_another_gpu_of_the_node_fails_the_signature():
    doc = near_payload()
    doc["evidence_list"][0]["certificate"] = doc["evidence_list"][1]["certificate"]
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    got = statuses(result)
    assert got["gpu.evidence[0]"] == "fail"
    assert got["gpu.chain[0]"] == "pass"  # the chain itself is genuine, just not this GPU's
    # FWID names the GSP firmware, which all GPUs of a node share: only the signature tells.
    assert got["gpu.fwid[0]"] == "pass"
    assert result.status == "failed"


def test_swapped_chain_from_a_gpu_on_other_firmware_fails_signature_and_fwid():
    doc = near_payload()
    legacy = json.loads((LEGACY / "nvidia_payload.json").read_text())
    doc["evidence_list"][0]["certificate"] = legacy["evidence_list"][0]["certificate"]
    got = statuses(verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT))
    assert (got["gpu.evidence[0]"], got["gpu.fwid[0]"], got["gpu.chain[0]"]) == (
        "fail",
        "fail",
        "pass",
    )


def test_same_gpu_listed_twice_is_flagged():
    doc = near_payload()
    doc["evidence_list"][1] = doc["evidence_list"][0]
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    assert statuses(result)["gpu.evidence[1]"] == "warn"
    assert result.status == "warning"


def _pem(certs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _chain_certs(doc: dict, i: int = 0) -> list[x509.Certificate]:
    pem = base64.b64decode(doc["evidence_list"][i]["certificate"])
    return x509.load_pem_x509_certificates(pem)


def test_chain_missing_an_intermediate_fails():
    doc = near_payload()
    certs = _chain_certs(doc)
    doc["evidence_list"][0]["certificate"] = _pem([certs[0], *certs[2:]])
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    check = next(c for c in result.checks if c.name == "gpu.chain[0]")
    assert check.status == "fail"
    assert "names issuer" in check.detail


def test_chain_without_the_appended_root_still_reaches_the_pinned_root():
    doc = near_payload()
    doc["evidence_list"][0]["certificate"] = _pem(_chain_certs(doc)[:4])
    assert statuses(verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT))["gpu.chain[0]"] == (
        "pass"
    )


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = True,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(9999, 12, 31, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key or key, hashes.SHA384())


def _forge(raw: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The report re-signed with ``key`` (what an attacker without NVIDIA's keys can do)."""
    der = key.sign(raw[:-96], ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    return raw[:-96] + r.to_bytes(48, "big") + s.to_bytes(48, "big")


def test_forged_evidence_under_a_self_made_nvidia_root_fails_the_chain():
    root_key, leaf_key = (
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP384R1()),
    )
    root = _ca("NVIDIA Device Identity CA", root_key)
    leaf = _ca("GH100 A01 GSP FMC LF", leaf_key, root.subject, root_key, ca=False)
    doc = near_payload()
    doc = with_report(doc, _forge(report_bytes(doc), leaf_key))
    doc["evidence_list"][0]["certificate"] = _pem([leaf, root])
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    got = statuses(result)
    assert got["gpu.evidence[0]"] == "pass"  # the forger's own signature is valid...
    assert got["gpu.chain[0]"] == "fail"  # ...but nothing reaches NVIDIA's pinned root
    assert result.status == "failed"


def test_real_chain_with_a_substituted_root_of_the_same_name_fails():
    doc = near_payload()
    certs = _chain_certs(doc)
    fake_root = _ca("NVIDIA Device Identity CA", ec.generate_private_key(ec.SECP384R1()))
    doc["evidence_list"][0]["certificate"] = _pem([*certs[:4], fake_root])
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    assert statuses(result)["gpu.chain[0]"] == "fail"


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "expired"),
        (datetime(2020, 10, 1, tzinfo=UTC), "not valid before"),
    ],
    ids=["expired", "not-yet-valid"],
)
def test_chain_outside_its_validity_at_the_verification_time_fails(at, message):
    result = verify_gpu_evidence(near_payload_text(), expected_nonce=NEAR_NONCE, at=at)
    check = next(c for c in result.checks if c.name == "gpu.chain[0]")
    assert check.status == "fail"
    assert message in check.detail


def test_wrong_expected_nonce_fails_every_gpu():
    result = verify_gpu_evidence(near_payload_text(), expected_nonce=b"\x00" * 32, at=AT)
    got = statuses(result)
    assert all(got[f"gpu.nonce[{i}]"] == "fail" for i in range(8))
    assert all(got[f"gpu.evidence[{i}]"] == "pass" for i in range(8))


def test_unsigned_payload_nonce_that_disagrees_with_the_signed_one_fails():
    doc = near_payload()
    doc["nonce"] = "00" * 32
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    check = next(c for c in result.checks if c.name == "gpu.nonce[0]")
    assert check.status == "fail"
    assert "payload nonce field" in check.detail


def test_fwid_flipped_in_the_report_fails_fwid():
    doc = near_payload()
    raw = report_bytes(doc)
    fwid = parse_attestation_report(raw).response.opaque.fwid
    at = raw.index(fwid)
    result = verify_gpu_evidence(
        with_report(doc, flip(raw, at + 5)), expected_nonce=NEAR_NONCE, at=AT
    )
    got = statuses(result)
    assert got["gpu.fwid[0]"] == "fail"
    assert got["gpu.evidence[0]"] == "fail"


def test_payload_arch_disagreeing_with_the_leaf_fails():
    doc = near_payload()
    doc["evidence_list"][0]["arch"] = "BLACKWELL"
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    check = next(c for c in result.checks if c.name == "gpu.evidence[0]")
    assert (check.status, "leaf certifies a GH100" in check.detail) == ("fail", True)


def test_truncated_report_fails_evidence_without_raising():
    doc = near_payload()
    truncated = with_report(doc, report_bytes(doc)[:100])
    result = verify_gpu_evidence(truncated, expected_nonce=NEAR_NONCE, at=AT)
    check = next(c for c in result.checks if c.name == "gpu.evidence[0]")
    assert check.status == "fail"
    assert "report unreadable" in check.detail
    assert result.status == "failed"


def test_garbage_certificate_fails_evidence_without_raising():
    doc = near_payload()
    doc["evidence_list"][0]["certificate"] = base64.b64encode(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    ).decode()
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    check = next(c for c in result.checks if c.name == "gpu.evidence[0]")
    assert (check.status, "certificate unreadable" in check.detail) == ("fail", True)


def test_undecodable_payload_is_one_failing_check():
    result = verify_gpu_evidence("{", expected_nonce=NEAR_NONCE, at=AT)
    assert [(c.name, c.status) for c in result.checks] == [("gpu.evidence", "fail")]
    assert result.status == "failed"
    assert result.gpus == []


def test_naive_verification_time_is_taken_as_utc():
    naive = verify_gpu_evidence(
        near_payload_text(), expected_nonce=NEAR_NONCE, at=AT.replace(tzinfo=None)
    )
    assert naive.status == "verified"


def test_no_mutation_in_the_corpus_yields_verified():
    doc = near_payload()
    raw = report_bytes(doc)
    corpus = [with_report(doc, flip(raw, off)) for off in range(0, len(raw), 97)]
    for mutated in corpus:
        result = verify_gpu_evidence(mutated, expected_nonce=NEAR_NONCE, at=AT)
        assert result.status == "failed"


def test_verification_time_can_be_any_instant_inside_the_window():
    for days in (0, 365, 3650):
        at = datetime(2022, 3, 1, tzinfo=UTC) + timedelta(days=days)
        assert verify_gpu_evidence(
            near_payload_text(), expected_nonce=NEAR_NONCE, at=at
        ).status == ("verified")


def test_one_unreadable_entry_does_not_sink_the_other_gpus():
    doc = near_payload()
    doc["evidence_list"][5]["evidence"] = ""
    result = verify_gpu_evidence(doc, expected_nonce=NEAR_NONCE, at=AT)
    got = statuses(result)
    assert got["gpu.evidence[5]"] == "fail"
    assert "gpu.chain[5]" not in got
    assert all(got[f"gpu.evidence[{i}]"] == "pass" for i in (0, 1, 2, 3, 4, 6, 7))
    assert len(result.gpus) == 7
    assert result.status == "failed"
