"""NVIDIA reference integrity manifests (RIMs): golden GPU measurements, and the comparison rule.

A RIM is an ISO/IEC 19770-2 SWID tag with TCG RIM metadata (TCG PC Client RIM spec), signed
with an enveloped XMLDSig (ECDSA-SHA384, C14N 1.1) whose ``X509Data`` carries the signer chain up
to "NVIDIA CoRIM signing Root CA" (docs/attestation.md "What gpu.* checks prove", ``gpu.rim``). Each
``Payload/Resource`` is one golden measurement: ``index`` (RIM index = SPDM block index - 1),
``active``, ``alternatives``, ``Hash0..n`` (SHA-384 hex) and ``size``.

There is one driver RIM per driver version (id ``NV_GPU_DRIVER_GH100_<version>``) and one
VBIOS RIM per board and VBIOS version (``NV_GPU_VBIOS_<project>_<sku>_<chip sku>_<version>``).
Comparison rule (nv-local-gpu-verifier ``Verifier``, NVAT ``verify.cpp``): every *active*
golden entry must equal one of its alternatives in the runtime block of the same index and
size; the two RIMs must not both have an active entry at one index; NVDEC0 disabled (opaque
type 11 = 0x55) exempts RIM index 35.

Signatures are verified with ``signxml`` (lxml) "as of" a given time, the signer chain with
:func:`teelog.attestation.gpu.certs.verify_chain` against the pinned CoRIM root.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import certs
from .errors import CertificateError, RimError
from .spdm import AttestationReport

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
HASH_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
NVDEC0_RIM_INDEX = 35
RIM_SUFFIXES = (".xml", ".swidtag")
_MAX_RIM_BYTES = 4 << 20
_SMALL_INT = re.compile(r"^[0-9]{1,6}$")
_VBIOS_VERSION = re.compile(r"^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$")


@dataclass(frozen=True, slots=True)
class GoldenMeasurement:
    """One golden entry: RIM ``index`` (SPDM block ``index + 1``), alternatives, size."""

    index: int
    active: bool
    alternatives: tuple[bytes, ...]
    size: int


@dataclass(frozen=True)
class ReferenceManifest:
    """A parsed RIM. ``kind`` is ``driver`` or ``vbios`` (from the version's shape)."""

    name: str
    product: str
    version: str
    kind: str
    measurements: tuple[GoldenMeasurement, ...]
    xml: bytes

    @property
    def active(self) -> list[GoldenMeasurement]:
        return [m for m in self.measurements if m.active]


def _bool(value: str | None, what: str) -> bool:
    if value is None or value.lower() not in ("true", "false"):
        raise RimError(f"{what} is not True/False: {value!r}")
    return value.lower() == "true"


def _int(value: str | None, what: str) -> int:
    if value is None or not _SMALL_INT.match(value):
        raise RimError(f"{what} is not a small integer: {value!r}")
    return int(value)


def _golden(resource: ET.Element, n: int) -> GoldenMeasurement:
    what = f"Resource[{n}]"
    index = _int(resource.get("index"), f"{what}.index")
    count = _int(resource.get("alternatives"), f"{what}.alternatives")
    hashes: list[bytes] = []
    for i in range(count):
        value = resource.get(f"{{{HASH_NS}}}Hash{i}")
        if value is None:
            raise RimError(f"{what} (index {index}) has no Hash{i}")
        try:
            hashes.append(bytes.fromhex(value))
        except ValueError:
            raise RimError(f"{what} (index {index}) Hash{i} is not hex") from None
    return GoldenMeasurement(
        index=index,
        active=_bool(resource.get("active"), f"{what}.active"),
        alternatives=tuple(hashes),
        size=_int(resource.get("size"), f"{what}.size"),
    )


def parse_rim(xml: bytes, name: str = "RIM") -> ReferenceManifest:
    """Parse a RIM (SWID tag XML) without checking its signature; :class:`RimError` if malformed."""
    if len(xml) > _MAX_RIM_BYTES:
        raise RimError(f"{name}: {len(xml)} bytes, larger than any RIM")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RimError(f"{name}: not well-formed XML: {exc}") from None
    if root.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise RimError(f"{name}: root element {root.tag!r} is not a SWID SoftwareIdentity")
    meta = root.find(f"{{{SWID_NS}}}Meta")
    if meta is None or not meta.get("colloquialVersion"):
        raise RimError(f"{name}: no Meta colloquialVersion")
    version = meta.get("colloquialVersion", "")
    product = meta.get("product") or root.get("name") or ""
    resources = root.findall(f"{{{SWID_NS}}}Payload/{{{SWID_NS}}}Resource")
    if not resources:
        raise RimError(f"{name}: no Payload/Resource measurements")
    golden = tuple(_golden(r, n) for n, r in enumerate(resources))
    if len({g.index for g in golden}) != len(golden):
        raise RimError(f"{name}: a measurement index appears twice")
    kind = "vbios" if _VBIOS_VERSION.match(version) else "driver"
    return ReferenceManifest(name, product, version, kind, golden, bytes(xml))


def load_rim_dir(directory: str | Path) -> tuple[list[ReferenceManifest], list[str]]:
    """Every RIM (``*.xml``, ``*.swidtag``) in ``directory``, and why the unreadable ones are."""
    path = Path(directory)
    if not path.is_dir():
        raise RimError(f"RIM directory {path} does not exist")
    rims, problems = [], []
    for file in sorted(path.iterdir()):
        if file.suffix.lower() in RIM_SUFFIXES and file.is_file():
            try:
                rims.append(parse_rim(file.read_bytes(), file.name))
            except (RimError, OSError) as exc:
                problems.append(f"{file.name} unreadable: {exc}")
    return rims, problems


def _signer_chain(xml: bytes) -> list[bytes]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RimError(f"not well-formed XML: {exc}") from None
    ders = []
    for node in root.iter(f"{{{DSIG_NS}}}X509Certificate"):
        try:
            ders.append(base64.b64decode("".join((node.text or "").split()), validate=True))
        except (binascii.Error, ValueError):
            raise RimError("X509Certificate is not base64") from None
    if not ders:
        raise RimError("signature carries no X509Certificate")
    return ders


@dataclass(frozen=True)
class RimSignature:
    """Outcome of a RIM signature check: ``ok`` and a one-line ``detail``."""

    ok: bool
    detail: str
    available: bool = True  # False when signxml is not installed


def verify_rim_signature(rim: ReferenceManifest, at: datetime) -> RimSignature:
    """Verify the RIM's XMLDSig and its signer chain to the pinned CoRIM root as of ``at``."""
    try:
        from signxml import SignatureConfiguration, SignatureMethod, XMLVerifier
        from signxml.algorithms import DigestAlgorithm
        from signxml.exceptions import InvalidInput, InvalidSignature
    except ImportError:
        return RimSignature(False, "signxml is not installed: RIM signature not checked", False)
    try:
        chain = [certs.load_certificate(der) for der in _signer_chain(rim.xml)]
    except (RimError, CertificateError) as exc:
        return RimSignature(False, f"{rim.name}: {exc}")
    result = certs.verify_chain(chain, certs.rim_root(), at)
    if not result.ok:
        return RimSignature(False, f"{rim.name} signer chain: {result.detail}")
    config = SignatureConfiguration(
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
        verification_time=at,
    )
    try:
        verified = XMLVerifier().verify(rim.xml, x509_cert=chain[0], expect_config=config)
        from lxml import etree

        signed = parse_rim(etree.tostring(verified.signed_xml), rim.name)
    except (InvalidSignature, InvalidInput) as exc:
        return RimSignature(False, f"{rim.name}: XML signature invalid: {exc}")
    except Exception as exc:  # lxml raises its own types on hostile XML
        return RimSignature(False, f"{rim.name}: XML signature not verifiable: {exc}")
    # Use only what the signature covers: the measurements we compare must be the signed ones.
    if (signed.measurements, signed.version, signed.product) != (
        rim.measurements,
        rim.version,
        rim.product,
    ):
        return RimSignature(False, f"{rim.name}: signed content differs from the parsed file")
    return RimSignature(
        True, f"{rim.name} signed by {certs.describe(chain[0])} (CoRIM root pinned)"
    )


def driver_rim_id(report: AttestationReport, chip: str) -> str:
    """NVIDIA's RIM id of the report's driver (``CcAdminUtils.get_driver_rim_file_id``)."""
    opaque = report.response.opaque
    if chip.startswith("GB"):
        return f"NV_GPU_CC_DRIVER_{opaque.chip_info or chip}_{opaque.driver_version}"
    return f"NV_GPU_DRIVER_{chip}_{opaque.driver_version}"


def vbios_rim_id(report: AttestationReport) -> str:
    """NVIDIA's RIM id of the report's VBIOS (``CcAdminUtils.get_vbios_rim_file_id``)."""
    o = report.response.opaque
    version = (o.vbios_version or "").replace(".", "").upper()
    return f"NV_GPU_VBIOS_{o.project}_{o.project_sku}_{o.chip_sku}_{version}"


def find_rims(
    rims: list[ReferenceManifest], report: AttestationReport, chip: str
) -> tuple[list[ReferenceManifest], list[ReferenceManifest]]:
    """Candidate driver and VBIOS RIMs for this report (same product and version)."""
    opaque = report.response.opaque
    drivers = [
        r
        for r in rims
        if r.kind == "driver" and r.version == opaque.driver_version and r.product == chip
    ]
    vbioses = [
        r
        for r in rims
        if r.kind == "vbios"
        and opaque.vbios_version is not None
        and r.version.lower() == opaque.vbios_version.lower()
        and r.product == chip
    ]
    return drivers, vbioses


def compare_measurements(
    report: AttestationReport, rims: list[ReferenceManifest]
) -> tuple[bool, str]:
    """Compare the report's measurement blocks with the golden values of ``rims``.

    Returns ``(ok, detail)``; the detail names the first mismatching index (SPDM numbering).
    """
    nvdec0_disabled = report.response.opaque.nvdec0_status == "disabled"
    owner: dict[int, str] = {}
    compared = 0
    for rim in rims:
        for golden in rim.active:
            if golden.index in owner:
                return False, (
                    f"{owner[golden.index]} and {rim.name} both have an active measurement "
                    f"at index {golden.index}"
                )
            owner[golden.index] = rim.name
            if golden.index == NVDEC0_RIM_INDEX and nvdec0_disabled:
                continue
            value = report.measurement(golden.index + 1)
            if value is None:
                return False, f"{rim.name}: block {golden.index + 1} is missing from the report"
            if len(value) != golden.size:
                return False, (
                    f"{rim.name}: block {golden.index + 1} has {len(value)} bytes, "
                    f"RIM says {golden.size}"
                )
            if value not in golden.alternatives:
                return False, (
                    f"{rim.name}: block {golden.index + 1} = {value.hex()[:16]}… matches none of "
                    f"{len(golden.alternatives)} reference value(s)"
                )
            compared += 1
    if len(owner) > len(report.response.blocks):
        return False, f"{len(owner)} golden measurements for {len(report.response.blocks)} blocks"
    return True, f"{compared} active measurement(s) match"
