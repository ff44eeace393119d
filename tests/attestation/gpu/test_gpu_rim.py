"""Reference integrity manifests: parse, signature as of a time, comparison, and gpu.rim."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime

import pytest
from gpu_helpers import (
    NEAR_NONCE,
    NVAT,
    NVLOCAL,
    hex_sample,
    near_payload,
    near_payload_text,
    report_bytes,
    statuses,
)
from teelog.attestation.gpu import verify_gpu_evidence
from teelog.attestation.gpu.rim import (
    RimError,
    compare_measurements,
    driver_rim_id,
    parse_rim,
    vbios_rim_id,
    verify_rim_signature,
)
from teelog.attestation.gpu.spdm import parse_attestation_report

try:
    import signxml  # noqa: F401

    HAVE_SIGNXML = True
except ImportError:
    HAVE_SIGNXML = False
needs_signxml = pytest.mark.skipif(not HAVE_SIGNXML, reason="signxml (RIM signatures) missing")

VBIOS_RIM = NVLOCAL / "1010_0200_882_96005E0001_PROD.swidtag"
DRIVER_RIM = NVAT / "NV_GPU_DRIVER_GH100_550.144.03.xml"
# The VBIOS RIM's signer is valid 2023-06-23 .. 2025-06-22, the driver RIM's to 2026-12-30.
IN_VBIOS_WINDOW = datetime(2024, 6, 1, tzinfo=UTC)
TODAY = datetime(2026, 11, 22, tzinfo=UTC)


def _report_535():
    doc = hex_sample("hopper_535.86.09_AttestationReport.txt", "hopper_535.86.09_CertChain.txt")
    return doc, parse_attestation_report(bytes.fromhex(doc["evidence_list"][0]["evidence"]))


def test_real_rims_parse_as_driver_and_vbios():
    vbios = parse_rim(VBIOS_RIM.read_bytes(), VBIOS_RIM.name)
    driver = parse_rim(DRIVER_RIM.read_bytes(), DRIVER_RIM.name)
    assert (vbios.kind, vbios.version, vbios.product, len(vbios.active)) == (
        "vbios",
        "96.00.5E.00.01",
        "GH100",
        12,
    )
    assert (driver.kind, driver.version, driver.product) == ("driver", "550.144.03", "GH100")
    assert {m.index for m in vbios.active} == {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12}


def test_rim_ids_follow_nvidia_naming():
    _, report = _report_535()
    assert vbios_rim_id(report) == "NV_GPU_VBIOS_1010_0200_882_96005E0001"
    assert driver_rim_id(report, "GH100") == "NV_GPU_DRIVER_GH100_535.86.09"


@needs_signxml
def test_driver_rim_signature_verifies_to_the_pinned_corim_root():
    rim = parse_rim(DRIVER_RIM.read_bytes(), DRIVER_RIM.name)
    outcome = verify_rim_signature(rim, TODAY)
    assert outcome.ok, outcome.detail


@needs_signxml
def test_vbios_rim_signature_verifies_inside_its_signer_window_only():
    rim = parse_rim(VBIOS_RIM.read_bytes(), VBIOS_RIM.name)
    assert verify_rim_signature(rim, IN_VBIOS_WINDOW).ok
    late = verify_rim_signature(rim, TODAY)
    assert not late.ok
    assert "HCC RIM L4 Signer expired 2025-06-22" in late.detail


@needs_signxml
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'index="7" active="True"', b'index="7" active="False"'),
        (b'ns2:Hash0="4a5e4b3d', b'ns2:Hash0="5a5e4b3d'),
        (b'colloquialVersion="550.144.03"', b'colloquialVersion="570.172.08"'),
    ],
    ids=["deactivated-entry", "changed-hash", "changed-version"],
)
def test_tampered_rim_fails_its_signature(old, new):
    xml = DRIVER_RIM.read_bytes()
    assert old in xml
    rim = parse_rim(xml.replace(old, new, 1), DRIVER_RIM.name)
    outcome = verify_rim_signature(rim, TODAY)
    assert not outcome.ok


def test_vbios_golden_values_match_nvidias_535_sample():
    _, report = _report_535()
    ok, detail = compare_measurements(report, [parse_rim(VBIOS_RIM.read_bytes(), "vbios")])
    assert ok, detail
    assert detail == "12 active measurement(s) match"


def test_golden_values_do_not_match_another_boards_report():
    near = parse_attestation_report(report_bytes(near_payload()))
    ok, detail = compare_measurements(near, [parse_rim(VBIOS_RIM.read_bytes(), "vbios")])
    assert not ok
    assert "matches none of" in detail


def test_two_rims_active_at_one_index_conflict():
    _, report = _report_535()
    vbios = parse_rim(VBIOS_RIM.read_bytes(), "a")
    ok, detail = compare_measurements(report, [vbios, parse_rim(VBIOS_RIM.read_bytes(), "b")])
    assert not ok
    assert "both have an active measurement" in detail


@needs_signxml
def test_gpu_rim_with_only_the_vbios_rim_is_a_non_required_skip_naming_the_missing_driver_rim(
    tmp_path,
):
    shutil.copy(VBIOS_RIM, tmp_path)
    doc, report = _report_535()
    result = verify_gpu_evidence(
        doc, expected_nonce=report.nonce, at=IN_VBIOS_WINDOW, rim_dir=tmp_path
    )
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert (check.status, check.required) == ("skip", False)
    assert "no driver RIM NV_GPU_DRIVER_GH100_535.86.09" in check.detail
    assert "12 active measurement(s) match" in check.detail
    assert result.status == "verified"


@needs_signxml
def test_gpu_rim_fails_with_an_expired_rim_signer(tmp_path):
    shutil.copy(VBIOS_RIM, tmp_path)
    doc, report = _report_535()
    result = verify_gpu_evidence(doc, expected_nonce=report.nonce, at=TODAY, rim_dir=tmp_path)
    assert statuses(result)["gpu.rim[0]"] == "fail"
    assert result.status == "failed"


@needs_signxml
def test_gpu_rim_fails_with_a_tampered_rim(tmp_path):
    xml = VBIOS_RIM.read_bytes().replace(b'active="True"', b'active="False"', 1)
    (tmp_path / VBIOS_RIM.name).write_bytes(xml)
    doc, report = _report_535()
    result = verify_gpu_evidence(
        doc, expected_nonce=report.nonce, at=IN_VBIOS_WINDOW, rim_dir=tmp_path
    )
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert check.status == "fail"
    assert "signature" in check.detail


def test_gpu_rim_for_a_node_without_its_rims_names_both_ids(tmp_path):
    shutil.copy(VBIOS_RIM, tmp_path)
    shutil.copy(DRIVER_RIM, tmp_path)
    result = verify_gpu_evidence(
        near_payload_text(), expected_nonce=NEAR_NONCE, at=TODAY, rim_dir=tmp_path
    )
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert (check.status, check.required) == ("skip", False)
    assert "NV_GPU_DRIVER_GH100_570.172.08" in check.detail
    assert "NV_GPU_VBIOS_G520_0280_895_9600CF0002" in check.detail


def test_missing_rim_directory_fails(tmp_path):
    result = verify_gpu_evidence(
        near_payload_text(), expected_nonce=NEAR_NONCE, at=TODAY, rim_dir=tmp_path / "nope"
    )
    got = statuses(result)
    assert all(got[f"gpu.rim[{i}]"] == "fail" for i in range(8))
    assert "does not exist" in result.checks[4].detail


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<a", "not well-formed"),
        (b"<a/>", "not a SWID"),
        (
            b'<s:SoftwareIdentity xmlns:s="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"/>',
            "no Meta",
        ),
    ],
)
def test_malformed_rims_raise_rim_error(xml, message):
    with pytest.raises(RimError, match=message):
        parse_rim(xml)


def test_non_numeric_index_is_rejected():
    xml = DRIVER_RIM.read_bytes().replace(b'index="7"', b'index="\xc2\xb2"', 1)
    with pytest.raises(RimError, match="not a small integer"):
        parse_rim(xml)


def test_without_signxml_matching_rims_only_warn_or_skip(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "signxml", None)  # import now fails
    shutil.copy(VBIOS_RIM, tmp_path)
    doc, report = _report_535()
    result = verify_gpu_evidence(doc, expected_nonce=report.nonce, at=TODAY, rim_dir=tmp_path)
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert check.status == "skip"  # the driver RIM is missing anyway
    assert "signxml is not installed" in check.detail


def test_unreadable_rim_files_are_named_in_the_detail(tmp_path):
    (tmp_path / "NV_GPU_DRIVER_GH100_570.172.08.xml").write_text("<oops")
    result = verify_gpu_evidence(
        near_payload_text(), expected_nonce=NEAR_NONCE, at=TODAY, rim_dir=tmp_path
    )
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert check.status == "skip"
    assert "NV_GPU_DRIVER_GH100_570.172.08.xml unreadable: " in check.detail


# --- full pass: RIMs signed by a local CA standing in for NVIDIA's CoRIM root ------------------
# No real driver RIM matches a real report in the fixtures, so the passing path (and a valid
# signature over wrong values) is exercised with RIMs this test signs under its own root, which
# replaces the pinned root only inside the test.

DRIVER_INDICES = [7, *range(21, 41)]
VBIOS_INDICES = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]


def _local_pki():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    def cert(name, key, issuer=None, issuer_key=None, ca=True):
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2023, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA384())
        )

    root_key, signer_key = (ec.generate_private_key(ec.SECP384R1()) for _ in range(2))
    root = cert("Test CoRIM Root", root_key)
    signer = cert("Test RIM Signer", signer_key, root, root_key, ca=False)
    return root, signer, signer_key


def _signed_rim(version: str, golden: dict[int, bytes], signer, key) -> bytes:
    from lxml import etree
    from signxml import XMLSigner

    resources = "".join(
        f'<ns0:Resource type="Measurement" index="{i}" active="True" alternatives="1" '
        f'ns2:Hash0="{value.hex()}" name="Measurement_{i}" size="{len(value)}"/>'
        for i, value in sorted(golden.items())
    )
    xml = (
        '<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" '
        'xmlns:ns0="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" '
        'xmlns:ns2="http://www.w3.org/2001/04/xmlenc#sha384" name="GH100" tagId="t" '
        'version="1.0"><ns0:Meta colloquialVersion="' + version + '" product="GH100"/>'
        "<ns0:Payload>" + resources + "</ns0:Payload></SoftwareIdentity>"
    )
    signed = XMLSigner(signature_algorithm="ecdsa-sha384", digest_algorithm="sha384").sign(
        etree.fromstring(xml.encode()), key=key, cert=[signer]
    )
    return etree.tostring(signed)


@pytest.fixture
def local_rims(tmp_path, monkeypatch):
    from teelog.attestation.gpu import certs

    root, signer, key = _local_pki()
    monkeypatch.setattr(certs, "rim_root", lambda: root)
    doc, report = _report_535()

    def write(driver_golden=None, vbios_golden=None):
        measured = {i: report.measurement(i + 1) for i in DRIVER_INDICES + VBIOS_INDICES}
        driver = driver_golden or {i: measured[i] for i in DRIVER_INDICES}
        vbios = vbios_golden or {i: measured[i] for i in VBIOS_INDICES}
        (tmp_path / "driver.xml").write_bytes(_signed_rim("535.86.09", driver, signer, key))
        (tmp_path / "vbios.xml").write_bytes(_signed_rim("96.00.5E.00.01", vbios, signer, key))
        return verify_gpu_evidence(
            doc, expected_nonce=report.nonce, at=IN_VBIOS_WINDOW, rim_dir=tmp_path
        )

    return write


@needs_signxml
def test_gpu_rim_passes_with_both_signed_rims_matching(local_rims):
    result = local_rims()
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert check.status == "pass", check.detail
    # 21 active driver entries, index 35 exempt: this GPU reports NVDEC0 disabled (0x55).
    assert "driver RIM driver.xml: 20 active" in check.detail
    assert "VBIOS RIM vbios.xml: 12 active" in check.detail
    assert result.status == "verified"


@needs_signxml
def test_validly_signed_rim_with_another_golden_value_fails(local_rims):
    _, report = _report_535()
    golden = {i: report.measurement(i + 1) for i in DRIVER_INDICES}
    golden[30] = bytes(48)
    result = local_rims(driver_golden=golden)
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert check.status == "fail"
    assert "block 31" in check.detail


@needs_signxml
def test_signed_rims_overlapping_at_one_index_fail(local_rims):
    _, report = _report_535()
    vbios = {i: report.measurement(i + 1) for i in [*VBIOS_INDICES, 7]}
    result = local_rims(vbios_golden=vbios)
    check = next(c for c in result.checks if c.name == "gpu.rim[0]")
    assert check.status == "fail"
    assert "both have an active measurement at index 7" in check.detail


@needs_signxml
def test_nvdec0_disabled_exempts_rim_index_35(local_rims):
    _, report = _report_535()
    assert report.response.opaque.nvdec0_status == "disabled"
    golden = {i: report.measurement(i + 1) for i in DRIVER_INDICES}
    golden[35] = b"\xab" * 48  # differs from block 36, which is not compared
    assert (
        next(c for c in local_rims(driver_golden=golden).checks if c.name == "gpu.rim[0]").status
        == "pass"
    )
