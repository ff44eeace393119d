"""Verify NVIDIA GPU evidence offline: the ``gpu.*`` checks of a verdict.

Per GPU ``i`` (index in the evidence list), in this order:

``gpu.evidence[i]``  the SPDM report parses, its architecture agrees with the leaf certificate,
                     and its ECDSA P-384 signature over ``request ‖ response[:-96]`` (SHA-384)
                     verifies under the leaf key (docs/attestation.md "What gpu.* checks prove").
``gpu.chain[i]``     the certificate chain reaches the pinned NVIDIA Device Identity CA, every
                     certificate valid at ``at``. Revocation is not checked (needs OCSP).
``gpu.fwid[i]``      the FWID in the leaf's TCG DICE TcbInfo equals the report's opaque FWID
                     (ties the attestation key to the GSP firmware); skipped (not required)
                     for old drivers whose reports carry no FWID, as NVIDIA's verifier does.
``gpu.nonce[i]``     the GPU-signed requester nonce equals the expected nonce (the TDX request
                     nonce): the evidence was made for this request. No expected nonce: skip.
``gpu.rim[i]``       with a RIM directory: measurements against the signed driver and VBIOS
                     reference values; without: skip, not required.

and once per payload ``gpu.nras``: a stored NRAS response with its JWKS snapshot (see
:mod:`.nras`); without them: skip, not required.

A payload that cannot be decoded at all yields one failing ``gpu.evidence`` check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..measurements import GpuMeasurement
from ..verdict import Check, Status, malformed_evidence, status_of
from . import certs, nras, rim
from .errors import GpuEvidenceError
from .payload import GpuEvidence, NvidiaPayload, decode_nvidia_payload
from .spdm import AttestationReport, SpdmError, parse_attestation_report

# Leaf CN prefix ("GH100 A01 GSP FMC LF") -> payload architecture name.
CHIP_ARCH = {"GH100": "HOPPER", "GB100": "BLACKWELL", "GB200": "BLACKWELL"}
_ECDSA_P384 = ec.ECDSA(hashes.SHA384())


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """What one GPU's evidence says, for display; GPU-signed fields unless noted.

    ``arch`` is the payload's (unsigned) architecture name, ``chip`` the one in the leaf
    certificate; ``ueid`` is the leaf serial in decimal (NRAS ``ueid``).
    """

    index: int
    arch: str | None
    chip: str | None
    driver_version: str | None
    vbios_version: str | None
    project: str | None
    project_sku: str | None
    chip_sku: str | None
    fwid: str | None
    nonce: str
    ueid: str | None
    feature_flag: str | None
    nvdec0_status: str | None
    protected_pcie_status: str | None
    nonzero_blocks: int
    evidence_encoding: str

    def measurement(self) -> GpuMeasurement:
        return GpuMeasurement(
            index=self.index,
            arch=self.arch or CHIP_ARCH.get(self.chip or ""),
            driver_version=self.driver_version,
            vbios_version=self.vbios_version,
        )

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass
class GpuResult:
    """The ``gpu.*`` checks of one ``nvidia_payload`` and what each GPU reported."""

    checks: list[Check] = field(default_factory=list)
    devices: list[GpuDevice] = field(default_factory=list)
    payload: NvidiaPayload | None = None

    @property
    def gpus(self) -> list[GpuMeasurement]:
        """Per-GPU measurements (index, arch, driver, VBIOS) for :class:`Measurements`."""
        return [d.measurement() for d in self.devices]

    @property
    def status(self) -> Status:
        return status_of(self.checks)


def _chip(leaf: x509.Certificate) -> str | None:
    """The chip name a leaf certifies: first word of its CN ("GH100 A01 GSP FMC LF")."""
    cns = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = str(cns[0].value) if cns else ""
    return value.split(" ", 1)[0] or None


def verify_report_signature(report: AttestationReport, leaf: x509.Certificate) -> bool:
    """ECDSA P-384/SHA-384 signature of the report (raw ``r ‖ s``) under the leaf key."""
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    sig = report.signature
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    try:
        key.verify(der, report.signed_bytes, _ECDSA_P384)
    except InvalidSignature:
        return False
    return True


class _RimContext:
    """RIMs of one directory, loaded once per call, each signature checked at most once."""

    def __init__(self, directory: Path, at: datetime) -> None:
        self.directory = directory
        self.at = at
        self.error: str | None = None
        self.rims: list[rim.ReferenceManifest] = []
        self.problems: list[str] = []
        try:
            self.rims, self.problems = rim.load_rim_dir(directory)
        except GpuEvidenceError as exc:
            self.error = str(exc)
        self._signatures: dict[str, rim.RimSignature] = {}

    def signature(self, manifest: rim.ReferenceManifest) -> rim.RimSignature:
        if manifest.name not in self._signatures:
            self._signatures[manifest.name] = rim.verify_rim_signature(manifest, self.at)
        return self._signatures[manifest.name]


def _check_rim(name: str, report: AttestationReport, chip: str, ctx: _RimContext) -> Check:
    drivers, vbioses = rim.find_rims(ctx.rims, report, chip)
    chosen: list[rim.ReferenceManifest] = []
    notes: list[str] = []
    missing: list[str] = []
    for kind, candidates, rim_id in (
        ("driver", drivers, rim.driver_rim_id(report, chip)),
        ("VBIOS", vbioses, rim.vbios_rim_id(report)),
    ):
        if not candidates:
            missing.append(f"no {kind} RIM {rim_id} in {ctx.directory}")
            continue
        failures = []
        for manifest in candidates:
            signature = ctx.signature(manifest)
            if not signature.ok and signature.available:
                failures.append(signature.detail)
                continue
            ok, detail = rim.compare_measurements(report, [manifest])
            if not ok:
                failures.append(detail)
                continue
            chosen.append(manifest)
            notes.append(f"{kind} RIM {manifest.name}: {detail}; {signature.detail}")
            break
        else:
            return Check(name, "fail", "; ".join(failures))
    if len(chosen) == 2:
        ok, detail = rim.compare_measurements(report, chosen)
        if not ok:
            return Check(name, "fail", detail)
    if missing:
        return Check(name, "skip", "; ".join(missing + notes + ctx.problems), required=False)
    unsigned = [m.name for m in chosen if not ctx.signature(m).ok]
    if unsigned:
        return Check(name, "warn", "; ".join(notes) + " (RIM signatures not verified)")
    return Check(name, "pass", "; ".join(notes))


def _check_nonce(
    name: str,
    ev: GpuEvidence,
    report: AttestationReport,
    payload: NvidiaPayload,
    expected: bytes | None,
) -> Check:
    signed = report.nonce
    unsigned = {n for n in (ev.nonce, payload.nonce) if n is not None}
    if unsigned - {signed}:
        return Check(
            name,
            "fail",
            (
                f"payload nonce field {min(n.hex() for n in unsigned - {signed})} differs from "
                f"the GPU-signed requester nonce {signed.hex()}"
            ),
        )
    if expected is None:
        return Check(
            name,
            "skip",
            (
                f"GPU-signed nonce {signed.hex()}; no expected nonce given, so the evidence is not "
                "bound to a request"
            ),
        )
    if signed != expected:
        return Check(name, "fail", f"GPU-signed nonce {signed.hex()} != expected {expected.hex()}")
    return Check(name, "pass", f"GPU-signed requester nonce = expected {expected.hex()}")


def _device(ev: GpuEvidence, report: AttestationReport, leaf: x509.Certificate) -> GpuDevice:
    opaque = report.response.opaque
    fwid = opaque.fwid
    return GpuDevice(
        index=ev.index,
        arch=ev.arch,
        chip=_chip(leaf),
        driver_version=opaque.driver_version,
        vbios_version=opaque.vbios_version,
        project=opaque.project,
        project_sku=opaque.project_sku,
        chip_sku=opaque.chip_sku,
        fwid=fwid.hex() if fwid is not None else None,
        nonce=report.nonce.hex(),
        ueid=str(leaf.serial_number),
        feature_flag=opaque.feature_flag,
        nvdec0_status=opaque.nvdec0_status,
        protected_pcie_status=opaque.protected_pcie_status,
        nonzero_blocks=report.nonzero_blocks,
        evidence_encoding=ev.encoding,
    )


def _check_evidence(
    name: str,
    ev: GpuEvidence,
    report: AttestationReport,
    leaf: x509.Certificate,
    seen: dict[bytes, int],
) -> Check:
    """Signature under the leaf, payload arch vs certified chip, one device listed once."""
    chip = _chip(leaf)
    if not verify_report_signature(report, leaf):
        return Check(
            name,
            "fail",
            (
                f"ECDSA P-384 signature does not verify under leaf {certs.describe(leaf)} "
                f"(serial {leaf.serial_number:x})"
            ),
        )
    expected_arch = CHIP_ARCH.get(chip or "")
    if ev.arch is not None and expected_arch is not None and ev.arch != expected_arch:
        return Check(name, "fail", f"payload says {ev.arch}, leaf certifies a {chip}")
    device = certs.fingerprint(leaf)
    if device in seen:
        return Check(
            name, "warn", (f"same device certificate as GPU {seen[device]}: one GPU listed twice")
        )
    seen[device] = ev.index
    opaque = report.response.opaque
    return Check(
        name,
        "pass",
        (
            f"SPDM {report.request.version_text}, {len(report.response.blocks)} blocks, driver "
            f"{opaque.driver_version}, VBIOS {opaque.vbios_version}; signature valid under "
            f"{certs.describe(leaf)} (ueid {leaf.serial_number})"
        ),
    )


def _check_fwid(name: str, report: AttestationReport, leaf: x509.Certificate) -> Check:
    """The report's opaque FWID against the FWID the leaf certificate certifies."""
    fwid = report.response.opaque.fwid
    try:
        leaf_fwid = certs.leaf_fwid(leaf)
    except GpuEvidenceError as exc:
        return Check(name, "fail", f"leaf FWID extension unreadable: {exc}")
    if fwid is None:
        driver = report.response.opaque.driver_version
        return Check(
            name,
            "skip",
            (f"report carries no FWID (driver {driver}); not checked, like NVIDIA's verifier"),
            required=False,
        )
    if leaf_fwid is None:
        return Check(name, "fail", "report has an FWID but the leaf certifies none")
    if leaf_fwid != fwid:
        return Check(
            name, "fail", (f"report FWID {fwid.hex()[:16]}… != leaf FWID {leaf_fwid.hex()[:16]}…")
        )
    return Check(name, "pass", f"report FWID = leaf FWID {fwid.hex()[:16]}…")


def _verify_one(
    ev: GpuEvidence,
    payload: NvidiaPayload,
    expected_nonce: bytes | None,
    at: datetime,
    rims: _RimContext | None,
    seen: dict[bytes, int],
    result: GpuResult,
) -> None:
    """Append the five ``gpu.*[i]`` checks of one GPU (one failing check if unreadable)."""
    i = ev.index
    checks = result.checks
    try:
        report = parse_attestation_report(ev.report)
        leaf, *_ = [certs.load_certificate(der) for der in ev.certificates]
        device = _device(ev, report, leaf)
    except SpdmError as exc:
        checks.append(Check(f"gpu.evidence[{i}]", "fail", f"report unreadable: {exc}"))
        return
    except GpuEvidenceError as exc:
        checks.append(Check(f"gpu.evidence[{i}]", "fail", f"certificate unreadable: {exc}"))
        return
    except Exception as exc:  # e.g. a certificate with a bad X.509 version field
        checks.append(malformed_evidence(f"gpu.evidence[{i}]", exc))
        return
    result.devices.append(device)

    def chain() -> Check:
        chained = certs.verify_device_chain(ev.certificates, at)
        return Check(f"gpu.chain[{i}]", "pass" if chained.ok else "fail", chained.detail)

    def rim_check() -> Check:
        name = f"gpu.rim[{i}]"
        if rims is None:
            return Check(name, "skip", "no reference files (RIMs) given", required=False)
        if rims.error is not None:
            return Check(name, "fail", rims.error)
        return _check_rim(name, report, _chip(leaf) or "", rims)

    # Each check runs on its own: evidence that makes one raise fails that check only.
    for name, run in (
        (f"gpu.evidence[{i}]",
         lambda: _check_evidence(f"gpu.evidence[{i}]", ev, report, leaf, seen)),
        (f"gpu.chain[{i}]", chain),
        (f"gpu.fwid[{i}]", lambda: _check_fwid(f"gpu.fwid[{i}]", report, leaf)),
        (f"gpu.nonce[{i}]",
         lambda: _check_nonce(f"gpu.nonce[{i}]", ev, report, payload, expected_nonce)),
        (f"gpu.rim[{i}]", rim_check),
    ):
        try:
            checks.append(run())
        except Exception as exc:
            checks.append(malformed_evidence(name, exc))


def _nras_check(
    nras_doc: Any,
    jwks: Any,
    *,
    at: datetime,
    expected_nonce: bytes | None,
    gpu_count: int,
    ueids: set[str],
) -> Check:
    if nras_doc is None:
        return Check("gpu.nras", "skip", "no stored NRAS response given", required=False)
    if jwks is None:
        return Check(
            "gpu.nras",
            "skip",
            ("NRAS response given without its JWKS snapshot: signature not checkable"),
            required=False,
        )
    outcome = nras.verify_nras_response(
        nras_doc, jwks, at=at, expected_nonce=expected_nonce, gpu_count=gpu_count, ueids=ueids
    )
    return Check("gpu.nras", "pass" if outcome.ok else "fail", outcome.detail)


def verify_gpu_evidence(
    payload: str | bytes | dict[str, Any] | list[Any] | NvidiaPayload,
    *,
    expected_nonce: bytes | None,
    at: datetime,
    rim_dir: str | Path | None = None,
    jwks: Any = None,
    nras: Any = None,
) -> GpuResult:
    """Verify an ``nvidia_payload`` (any known encoding) as of ``at``; never raises on bad evidence.

    ``expected_nonce`` is the 32-byte nonce the GPU evidence must carry (the TDX request nonce,
    or the provider's derived GPU nonce). ``rim_dir`` holds RIM files (``*.xml``, ``*.swidtag``);
    ``nras`` is a stored NRAS response and ``jwks`` the JWKS captured with it (JSON text or
    parsed). A naive ``at`` is taken as UTC.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    result = GpuResult()
    try:
        decoded = (
            payload
            if isinstance(payload, NvidiaPayload)
            else decode_nvidia_payload(payload, strict=False)
        )
    except GpuEvidenceError as exc:
        result.checks.append(Check("gpu.evidence", "fail", f"nvidia_payload unreadable: {exc}"))
        return result
    except Exception as exc:
        result.checks.append(malformed_evidence("gpu.evidence", exc))
        return result
    result.payload = decoded
    rims = _RimContext(Path(rim_dir), at) if rim_dir is not None else None
    seen: dict[bytes, int] = {}
    rejected = dict(decoded.rejected)
    evidence = {ev.index: ev for ev in decoded.evidence}
    for i in sorted({*rejected, *evidence}):
        if i in rejected:
            result.checks.append(Check(f"gpu.evidence[{i}]", "fail", rejected[i]))
        else:
            _verify_one(evidence[i], decoded, expected_nonce, at, rims, seen, result)
    try:
        nras_check = _nras_check(
            nras,
            jwks,
            at=at,
            expected_nonce=expected_nonce,
            gpu_count=len(decoded.evidence) + len(decoded.rejected),
            ueids={d.ueid for d in result.devices if d.ueid is not None},
        )
    except Exception as exc:
        nras_check = malformed_evidence("gpu.nras", exc)
    result.checks.append(nras_check)
    return result
