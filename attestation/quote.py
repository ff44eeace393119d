"""Parsing SGX and TDX DCAP quotes (Intel TDX DCAP Quote Generation Library, "Quote Format").

Layouts handled (all integers little-endian):

- header (48 bytes): version u16, attestation key type u16, TEE type u32 (0 SGX, 0x81 TDX),
  QE SVN u16, PCE SVN u16, QE vendor ID (16), user data (20);
- quote v3 (SGX): ISV enclave report (384) at offset 48;
- quote v4 (TDX): TD report 1.0 (584) at offset 48;
- quote v5 (TDX): body descriptor (type u16: 2 = TD report 1.0, 3 = TD report 1.5; size u32)
  at offset 48, then the body (584 or 648 bytes) at offset 54;
- then the signature data: length u32, ECDSA-P256 signature (64), attestation key (64) and the
  certification data; for TDX the certification data is type 6 (QE report certification data:
  QE report (384), its signature (64), QE authentication data, then the PCK chain, type 5).

Every length field must agree exactly with what it delimits: the signature data length with its
parts, the type-6 size with the QE report, signature, authentication data and inner
certification data it holds. Nothing may follow the signature data except zero bytes: real TDX
v4 quotes are zero-padded to the 5006 bytes of a v5 quote buffer (tests/data/tdx). That padding
is not part of the quote: :attr:`Quote.raw` ends with the signature data, so
:attr:`Quote.sha256` is the same for a padded and an unpadded copy of one quote, and no other
bytes can be appended to a quote without it being rejected as malformed.

The report fields come from ``dcap_qvl.parse_quote``; the layout walk (offsets, certification
data), the TD attribute bits and XFAM are decoded here, because dcap-qvl exposes them only as
raw bytes. Malformed input raises :class:`QuoteFormatError`, never IndexError or a panic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

import dcap_qvl

from .errors import QuoteFormatError

HEADER_SIZE = 48
SGX_REPORT_SIZE = 384
TD10_REPORT_SIZE = 584
TD15_REPORT_SIZE = 648
TEE_TYPE_SGX = 0x00
TEE_TYPE_TDX = 0x81
QE_REPORT_SIZE = 384
CERT_TYPE_PCK_CHAIN = 5
CERT_TYPE_QE_REPORT = 6
# Intel SGX PCK certificate extension (SGX PCK Certificate and CRL Profile §1.3.5).
SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
# Offsets of fields inside a TD quote body (TD report 1.0 and 1.5 share them).
TD_ATTRIBUTES_OFFSET = 120
TD_MRTD_OFFSET = 136
TD_MR_CONFIG_ID_OFFSET = 184
TD_REPORT_DATA_OFFSET = 520
SGX_REPORT_DATA_OFFSET = 320

# TD ATTRIBUTES bits (Intel TDX Module ABI spec, "ATTRIBUTES"; same names as Linux
# arch/x86/include/asm/shared/tdx.h). Bits not named here are reserved and must be zero.
TD_ATTRIBUTE_BITS: dict[int, str] = {
    0: "DEBUG",
    4: "HGS_PLUS_PROF",
    5: "PERF_PROF",
    6: "PMT_PROF",
    16: "ICSSD",
    27: "LASS",
    28: "SEPT_VE_DISABLE",
    29: "MIGRATABLE",
    30: "PKS",
    31: "KL",
    62: "TPA",
    63: "PERFMON",
}

# XFAM bits (Intel SDM Vol. 1 §13.1, XSAVE-supported features / state components).
XFAM_BITS: dict[int, str] = {
    0: "X87",
    1: "SSE",
    2: "AVX",
    3: "MPX_BNDREGS",
    4: "MPX_BNDCSR",
    5: "AVX512_OPMASK",
    6: "AVX512_ZMM_HI256",
    7: "AVX512_HI16_ZMM",
    8: "PT",
    9: "PKRU",
    10: "PASID",
    11: "CET_U",
    12: "CET_S",
    13: "HDC",
    14: "ULI",
    15: "LBR",
    16: "HWP",
    17: "AMX_TILECFG",
    18: "AMX_TILEDATA",
    19: "APX",
}

_HEX_RE = re.compile(rb"\A(?:0[xX])?[0-9a-fA-F\s]+\Z")
_BINARY_PREFIXES = (b"\x03\x00", b"\x04\x00", b"\x05\x00")


@dataclass(frozen=True, slots=True)
class TdAttributes:
    """The 64-bit TD ATTRIBUTES, decoded bit by bit."""

    value: int

    def bit(self, n: int) -> bool:
        return bool(self.value >> n & 1)

    @property
    def debug(self) -> bool:
        """DEBUG (bit 0): the host VMM can read and write the TD's memory and registers."""
        return self.bit(0)

    @property
    def sept_ve_disable(self) -> bool:
        return self.bit(28)

    @property
    def migratable(self) -> bool:
        return self.bit(29)

    @property
    def pks(self) -> bool:
        return self.bit(30)

    @property
    def kl(self) -> bool:
        return self.bit(31)

    @property
    def perfmon(self) -> bool:
        return self.bit(63)

    @property
    def flags(self) -> list[str]:
        """Names of the set bits; reserved bits appear as ``RESERVED<n>``."""
        return [TD_ATTRIBUTE_BITS.get(n, f"RESERVED{n}") for n in range(64) if self.value >> n & 1]

    @property
    def reserved_set(self) -> list[int]:
        return [n for n in range(64) if self.value >> n & 1 and n not in TD_ATTRIBUTE_BITS]

    def to_json(self) -> dict[str, Any]:
        return {"hex": self.value.to_bytes(8, "little").hex(), "flags": self.flags}


@dataclass(frozen=True, slots=True)
class Xfam:
    """The 64-bit XFAM: the XSAVE state components the TD may use."""

    value: int

    @property
    def features(self) -> list[str]:
        return [XFAM_BITS.get(n, f"BIT{n}") for n in range(64) if self.value >> n & 1]

    def to_json(self) -> dict[str, Any]:
        return {"hex": self.value.to_bytes(8, "little").hex(), "features": self.features}


@dataclass(frozen=True, slots=True)
class QuoteHeader:
    version: int
    attestation_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True, slots=True)
class TdReport:
    """A TD report (TDREPORT 1.0, or 1.5 with ``tee_tcb_svn2`` and ``mr_service_td``)."""

    version: str  # "1.0" | "1.5"
    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: TdAttributes
    xfam: Xfam
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mr_service_td: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "tee_tcb_svn": self.tee_tcb_svn.hex(),
            "mr_seam": self.mr_seam.hex(),
            "mr_signer_seam": self.mr_signer_seam.hex(),
            "seam_attributes": self.seam_attributes.hex(),
            "td_attributes": self.td_attributes.to_json(),
            "xfam": self.xfam.to_json(),
            "mr_td": self.mr_td.hex(),
            "mr_config_id": self.mr_config_id.hex(),
            "mr_owner": self.mr_owner.hex(),
            "mr_owner_config": self.mr_owner_config.hex(),
            **{f"rtmr{i}": r.hex() for i, r in enumerate(self.rtmrs)},
            "report_data": self.report_data.hex(),
        }
        if self.version == "1.5":
            out["tee_tcb_svn2"] = (self.tee_tcb_svn2 or b"").hex()
            out["mr_service_td"] = (self.mr_service_td or b"").hex()
        return out


@dataclass(frozen=True, slots=True)
class SgxReport:
    """An SGX ISV enclave report (SGX quote v3)."""

    cpu_svn: bytes
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    report_data: bytes

    @property
    def debug(self) -> bool:
        """ATTRIBUTES.DEBUG (bit 1 of the first byte, Intel SDM Vol. 3D §38.7.1)."""
        return bool(self.attributes[0] & 0x02)

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_svn": self.cpu_svn.hex(),
            "attributes": self.attributes.hex(),
            "mr_enclave": self.mr_enclave.hex(),
            "mr_signer": self.mr_signer.hex(),
            "report_data": self.report_data.hex(),
        }


@dataclass(frozen=True, slots=True)
class Certification:
    """The quote's certification data: QE report location and the PCK chain, if embedded."""

    cert_type: int
    qe_report_offset: int | None
    pck_chain_pem: bytes | None
    fmspc: str | None  # lowercase hex, 6 bytes
    ppid: str | None  # lowercase hex, 16 bytes
    pce_id: str | None
    pck_cpu_svn: str | None
    pck_pce_svn: int | None
    ca: str | None  # "platform" | "processor"


@dataclass(frozen=True, slots=True)
class SignatureData:
    """The ECDSA parts of the quote signature data (Intel DCAP Quote Format, "Quote Signature
    Data" and "QE Report Certification Data"), as raw bytes for the signature checks."""

    signature: bytes  # r ‖ s (64): the attestation key's signature over the signed region
    attestation_key: bytes  # x ‖ y (64): the P-256 attestation public key
    qe_report: bytes | None  # the QE's SGX report (384), None without a QE report
    qe_report_signature: bytes | None  # r ‖ s (64) by the PCK certificate's key
    qe_auth_data: bytes | None  # QE authentication data, hashed into the QE report data
    pck_cert_type: int  # certification data type inside the QE report data (5 = PEM chain)


@dataclass(frozen=True, slots=True)
class Quote:
    """A parsed DCAP quote; ``raw`` is kept so that verification uses exactly these bytes."""

    raw: bytes
    header: QuoteHeader
    report: TdReport | SgxReport
    body_offset: int
    body_size: int
    signature_data_offset: int
    certification: Certification
    signature_data: SignatureData

    @property
    def signed_bytes(self) -> bytes:
        """What the attestation key signs: header ‖ body (v3, v4), header ‖ body descriptor ‖
        body (v5), i.e. everything before the signature data (dcap-qvl ``signed_length``)."""
        return self.raw[: self.signature_data_offset]

    @property
    def is_tdx(self) -> bool:
        return self.header.tee_type == TEE_TYPE_TDX

    @property
    def fmspc(self) -> str | None:
        return self.certification.fmspc

    @property
    def report_data(self) -> bytes:
        return self.report.report_data

    @property
    def report_data_offset(self) -> int:
        """Absolute offset of report_data in :attr:`raw` (the simulator overwrites it)."""
        return self.body_offset + (TD_REPORT_DATA_OFFSET if self.is_tdx else SGX_REPORT_DATA_OFFSET)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def to_json(self) -> dict[str, Any]:
        h = self.header
        c = self.certification
        return {
            "version": h.version,
            "tee_type": "TDX" if self.is_tdx else "SGX",
            "attestation_key_type": h.attestation_key_type,
            "qe_svn": h.qe_svn,
            "pce_svn": h.pce_svn,
            "qe_vendor_id": h.qe_vendor_id.hex(),
            "user_data": h.user_data.hex(),
            "report": self.report.to_json(),
            "certification_data_type": c.cert_type,
            "fmspc": c.fmspc,
            "ppid": c.ppid,
            "pce_id": c.pce_id,
            "ca": c.ca,
            "sha256": self.sha256,
        }


def decode_quote_bytes(data: bytes | str) -> bytes:
    """Raw quote bytes from binary, hex text (``0x`` optional) or base64 text.

    Real reports carry quotes as hex (vllm-proxy, NEAR AI) or base64 (Redpill chutes, the
    2025 private-ml-sdk sample). Binary input is returned unchanged.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw[:2] in _BINARY_PREFIXES:
        return raw  # binary quote: version 3, 4 or 5, little-endian
    text = raw.strip()
    digits = text[2:] if text[:2] in (b"0x", b"0X") else text
    try:
        return bytes.fromhex(digits.decode("ascii"))  # fromhex skips ASCII whitespace
    except (ValueError, UnicodeDecodeError):
        pass
    if text and _HEX_RE.match(text):
        raise QuoteFormatError("quote hex text is malformed (odd number of digits?)")
    try:
        decoded = base64.b64decode(re.sub(rb"\s+", b"", text), validate=True)
    except (binascii.Error, ValueError):
        return raw
    return decoded if decoded[:2] in _BINARY_PREFIXES else raw


def parse_quote(raw: bytes) -> Quote:
    """Parse a DCAP quote (SGX v3, TDX v4/v5) without verifying it.

    Raises :class:`QuoteFormatError` with the reason when the bytes are not a quote.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise QuoteFormatError(f"a quote is bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) < HEADER_SIZE:
        raise QuoteFormatError(f"quote is {len(raw)} bytes, shorter than its 48-byte header")
    version, key_type, tee_type, qe_svn, pce_svn = struct.unpack_from("<HHIHH", raw, 0)
    header = QuoteHeader(
        version=version,
        attestation_key_type=key_type,
        tee_type=tee_type,
        qe_svn=qe_svn,
        pce_svn=pce_svn,
        qe_vendor_id=raw[12:28],
        user_data=raw[28:48],
    )
    body_offset, body_size = _body_layout(raw, header)
    sig_offset = body_offset + body_size
    walk = _walk_signature_data(raw, header, sig_offset)
    raw = raw[: walk.end]  # the quote proper; what followed was zero padding
    cert_type, qe_report_offset, pem = walk.cert_type, walk.qe_report_offset, walk.pem
    parsed = _dcap_qvl_parse(raw)
    fmspc, ppid, pce_id, cpu_svn, pce_svn, ca = _pck_identity(pem, parsed) if pem else (None,) * 6
    certification = Certification(
        cert_type=cert_type,
        qe_report_offset=qe_report_offset,
        pck_chain_pem=pem,
        fmspc=fmspc,
        ppid=ppid,
        pce_id=pce_id,
        pck_cpu_svn=cpu_svn,
        pck_pce_svn=pce_svn,
        ca=ca,
    )
    report = _report_from_dcap_qvl(parsed, header, body_size)
    return Quote(
        raw=raw,
        header=header,
        report=report,
        body_offset=body_offset,
        body_size=body_size,
        signature_data_offset=sig_offset,
        certification=certification,
        signature_data=walk.signature_data,
    )


def _body_layout(raw: bytes, header: QuoteHeader) -> tuple[int, int]:
    if header.tee_type == TEE_TYPE_SGX:
        if header.version != 3:
            raise QuoteFormatError(f"SGX quote version {header.version} (only v3 is defined)")
        return HEADER_SIZE, SGX_REPORT_SIZE
    if header.tee_type != TEE_TYPE_TDX:
        raise QuoteFormatError(f"unknown TEE type 0x{header.tee_type:x} (0 = SGX, 0x81 = TDX)")
    if header.version == 4:
        return HEADER_SIZE, TD10_REPORT_SIZE
    if header.version == 5:
        _need(raw, HEADER_SIZE + 6, "quote v5 body descriptor")
        body_type, body_size = struct.unpack_from("<HI", raw, HEADER_SIZE)
        expected = {2: TD10_REPORT_SIZE, 3: TD15_REPORT_SIZE}.get(body_type)
        if expected is None:
            raise QuoteFormatError(
                f"quote v5 body type {body_type} unsupported (2 = TD report 1.0, 3 = TD report 1.5)"
            )
        if body_size != expected:
            raise QuoteFormatError(
                f"quote v5 body type {body_type} declares size {body_size}, expected {expected}"
            )
        return HEADER_SIZE + 6, body_size
    raise QuoteFormatError(f"TDX quote version {header.version} (only v4 and v5 are defined)")


def _need(raw: bytes, end: int, what: str) -> None:
    if end > len(raw):
        raise QuoteFormatError(f"quote truncated: {what} needs {end} bytes, quote has {len(raw)}")


@dataclass(frozen=True, slots=True)
class _Walk:
    cert_type: int
    qe_report_offset: int | None
    pem: bytes | None
    signature_data: SignatureData
    end: int  # offset just after the signature data


def _walk_signature_data(raw: bytes, header: QuoteHeader, sig_offset: int) -> _Walk:
    """Walk the signature data to the certification data (quote v3/v4/v5 auth data layout),
    requiring every length field to match exactly what it delimits."""
    _need(raw, sig_offset + 4, "signature data length")
    (sig_len,) = struct.unpack_from("<I", raw, sig_offset)
    pos = sig_offset + 4
    end = pos + sig_len
    _need(raw, end, f"signature data ({sig_len} bytes)")
    if any(raw[end:]):
        raise QuoteFormatError(
            f"{len(raw) - end} bytes follow the {sig_len}-byte signature data and are not all "
            "zero padding: the quote's length fields do not account for them"
        )
    if pos + 128 > end:
        raise QuoteFormatError("signature data shorter than its signature and attestation key")
    signature, attestation_key = raw[pos : pos + 64], raw[pos + 64 : pos + 128]
    pos += 128
    qe_report_offset: int | None = None
    qe_auth: bytes | None = None
    if header.version == 3:
        qe_report_offset = pos
        pos += QE_REPORT_SIZE + 64
        pos, qe_auth = _auth_data(raw, pos, end)
    if pos + 6 > end:
        raise QuoteFormatError("quote truncated: certification data header missing")
    cert_type, cert_size = struct.unpack_from("<HI", raw, pos)
    pos += 6
    if pos + cert_size != end:
        raise QuoteFormatError(
            f"certification data declares {cert_size} bytes, the signature data leaves "
            f"{end - pos}"
        )
    if cert_type == CERT_TYPE_QE_REPORT:
        qe_report_offset = pos
        pos += QE_REPORT_SIZE + 64
        if pos > end:
            raise QuoteFormatError("QE report certification data truncated")
        pos, qe_auth = _auth_data(raw, pos, end)
        if pos + 6 > end:
            raise QuoteFormatError("QE report certification data lacks the PCK certification data")
        cert_type, cert_size = struct.unpack_from("<HI", raw, pos)
        pos += 6
        if pos + cert_size != end:
            raise QuoteFormatError(
                f"PCK certification data declares {cert_size} bytes, the QE report "
                f"certification data leaves {end - pos}"
            )
    pem = raw[pos : pos + cert_size] if cert_type == CERT_TYPE_PCK_CHAIN else None
    qe = qe_report_offset
    return _Walk(
        cert_type=cert_type,
        qe_report_offset=qe_report_offset,
        pem=pem,
        signature_data=SignatureData(
            signature=signature,
            attestation_key=attestation_key,
            qe_report=raw[qe : qe + QE_REPORT_SIZE] if qe is not None else None,
            qe_report_signature=(
                raw[qe + QE_REPORT_SIZE : qe + QE_REPORT_SIZE + 64] if qe is not None else None
            ),
            qe_auth_data=qe_auth,
            pck_cert_type=cert_type,
        ),
        end=end,
    )


def _auth_data(raw: bytes, pos: int, end: int) -> tuple[int, bytes]:
    if pos + 2 > end:
        raise QuoteFormatError("quote truncated: QE authentication data length missing")
    (auth_len,) = struct.unpack_from("<H", raw, pos)
    pos += 2
    if pos + auth_len > end:
        raise QuoteFormatError("QE authentication data overruns the signature data")
    return pos + auth_len, raw[pos : pos + auth_len]


_PckIdentity = tuple[str | None, str | None, str | None, str | None, int | None, str | None]
# PCK chain bytes -> decoded identity. A pure function of the (unverified) chain bytes, kept
# because every quote of a machine embeds the same chain; it is not a verification result.
_PCK_IDENTITY_CACHE: dict[bytes, _PckIdentity] = {}
_PCK_IDENTITY_CACHE_MAX = 1024


def _pck_identity(pem: bytes, parsed: dcap_qvl.Quote) -> _PckIdentity:
    """FMSPC, PPID, PCE ID, CPUSVN, PCESVN and CA from the PCK leaf's SGX extension (OID
    1.2.840.113741.1.13.1, SGX PCK Certificate and CRL Profile), as dcap-qvl decodes them."""
    cached = _PCK_IDENTITY_CACHE.get(pem)
    if cached is None:
        cached = _decode_pck_identity(parsed)
        if len(_PCK_IDENTITY_CACHE) >= _PCK_IDENTITY_CACHE_MAX:
            _PCK_IDENTITY_CACHE.clear()
        _PCK_IDENTITY_CACHE[pem] = cached
    return cached


def _decode_pck_identity(parsed: dcap_qvl.Quote) -> _PckIdentity:
    try:
        ext = parsed.pck_extension()
        ca = parsed.ca()
    except Exception:  # a chain dcap-qvl cannot read: the identity stays unknown
        return None, None, None, None, None, None
    if ext is None:
        return None, None, None, None, None, None
    return (
        bytes(ext.fmspc).hex(),
        bytes(ext.ppid).hex(),
        bytes(ext.pce_id).hex(),
        bytes(ext.cpu_svn).hex(),
        int(ext.pce_svn),
        str(ca),
    )


def _dcap_qvl_parse(raw: bytes) -> dcap_qvl.Quote:
    try:
        return dcap_qvl.parse_quote(raw)
    except Exception as exc:  # dcap-qvl raises ValueError for malformed input
        raise QuoteFormatError(str(exc)) from exc
    except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        raise QuoteFormatError(f"quote parser failed: {exc}") from exc


def _report_from_dcap_qvl(
    parsed: dcap_qvl.Quote, header: QuoteHeader, body_size: int
) -> TdReport | SgxReport:
    r = parsed.report
    if header.tee_type == TEE_TYPE_SGX:
        return SgxReport(
            cpu_svn=bytes(r.cpu_svn),
            attributes=bytes(r.attributes),
            mr_enclave=bytes(r.mr_enclave),
            mr_signer=bytes(r.mr_signer),
            report_data=bytes(r.report_data),
        )
    is_15 = body_size == TD15_REPORT_SIZE
    return TdReport(
        version="1.5" if is_15 else "1.0",
        tee_tcb_svn=bytes(r.tee_tcb_svn),
        mr_seam=bytes(r.mr_seam),
        mr_signer_seam=bytes(r.mr_signer_seam),
        seam_attributes=bytes(r.seam_attributes),
        td_attributes=TdAttributes(int.from_bytes(bytes(r.td_attributes), "little")),
        xfam=Xfam(int.from_bytes(bytes(r.xfam), "little")),
        mr_td=bytes(r.mr_td),
        mr_config_id=bytes(r.mr_config_id),
        mr_owner=bytes(r.mr_owner),
        mr_owner_config=bytes(r.mr_owner_config),
        rtmrs=(bytes(r.rt_mr0), bytes(r.rt_mr1), bytes(r.rt_mr2), bytes(r.rt_mr3)),
        report_data=bytes(r.report_data),
        tee_tcb_svn2=bytes(r.tee_tcb_svn2) if is_15 else None,
        mr_service_td=bytes(r.mr_service_td) if is_15 else None,
    )
