"""NVIDIA GPU attestation report: SPDM 1.1 GET_MEASUREMENTS request ‖ MEASUREMENTS response.

The report a Hopper/Blackwell GPU returns through NVML
(``nvmlDeviceGetConfComputeGpuAttestationReport``) is the 37-byte GET_MEASUREMENTS request
followed by the MEASUREMENTS response (DMTF DSP0274 SPDM 1.1 §10.11, "GET_MEASUREMENTS request
and MEASUREMENTS response"). All multi-byte integers are little-endian (SPDM §8). Layout
(docs/attestation.md "GPU evidence and receipts")::

    request  (37)  version u8 | code u8 = 0xE0 | param1 u8 | param2 u8 | nonce[32] | slot u8
    response       version u8 | code u8 = 0x60 | param1 u8 | param2 u8 | blocks u8 | rec_len u24
                   | record[rec_len] | nonce[32] | opaque_len u16 | opaque[opaque_len]
                   | signature[96]

The measurement record is a list of SPDM measurement blocks in the DMTF format (DSP0274 §10.11.1,
Table 45/46): ``index u8 | spec u8 (bit 0 = DMTF) | size u16 | dmtf_type u8 | value_size u16 |
value``. The opaque data is NVIDIA's TLV list: ``type u16 | size u16 | data``. The signature is a
raw ECDSA P-384 ``r ‖ s`` (48 + 48 bytes, big-endian) over ``request ‖ response`` without the
signature, with SHA-384 (SPDM 1.1 has no signing-context prefix).

:func:`parse_attestation_report` is the only entry point; it raises :class:`SpdmError` (a
``ValueError``) for anything malformed and never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from .errors import SpdmError

REQUEST_LENGTH = 37
SIGNATURE_LENGTH = 96  # ECDSA P-384 r ‖ s, Hopper and Blackwell alike
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
DMTF_MEASUREMENT_SPEC = 0x01
# Smallest response: header (8) + empty record + nonce (32) + opaque length (2) + signature.
_MIN_RESPONSE = 8 + 32 + 2 + SIGNATURE_LENGTH

# NVIDIA opaque-data types (nv-local-gpu-verifier ``OPAQUE_DATA_TYPES``, NVAT
# ``gpu_opaque_data_parser.cpp``); unknown types are kept with a generic name.
OPAQUE_TYPE_NAMES: dict[int, str] = {
    1: "CERT_ISSUER_NAME",
    2: "CERT_AUTHORITY_KEY_IDENTIFIER",
    3: "DRIVER_VERSION",
    4: "GPU_INFO",
    5: "SKU",
    6: "VBIOS_VERSION",
    7: "MANUFACTURER_ID",
    8: "TAMPER_DETECTION",
    9: "SMC",
    10: "VPR",
    11: "NVDEC0_STATUS",
    12: "MSRSCNT",
    13: "CPRINFO",
    14: "BOARD_ID",
    15: "CHIP_SKU",
    16: "CHIP_SKU_MOD",
    17: "PROJECT",
    18: "PROJECT_SKU",
    19: "PROJECT_SKU_MOD",
    20: "FWID",
    21: "PROTECTED_PCIE_STATUS",
    22: "SWITCH_PDI",
    23: "FLOORSWEPT_PORTS",
    24: "POSITION_ID",
    25: "LOCK_SWITCH_STATUS",
    32: "GPU_LINK_CONN",
    33: "SYS_ENABLE_STATUS",
    34: "OPAQUE_DATA_VERSION",
    35: "CHIP_INFO",
    36: "FEATURE_FLAG",
    255: "INVALID",
}
_TYPE_BY_NAME = {name: t for t, name in OPAQUE_TYPE_NAMES.items()}
FEATURE_FLAGS = {0: "SPT", 1: "MPT", 2: "PPCIE"}
# One-byte status fields (NVDEC0_STATUS, PROTECTED_PCIE_STATUS): NVIDIA BaseSettings constants.
STATUS_BYTES = {0xAA: "enabled", 0x55: "disabled"}


# index u8 | spec u8 | size u16 | DMTF value type u8 | DMTF value size u16 (DSP0274 Table 45/46)
_BLOCK_HEADER = struct.Struct("<BBHBH")


def _u16(data: bytes, off: int) -> int:
    return data[off] | data[off + 1] << 8


def _u24(data: bytes, off: int) -> int:
    return data[off] | data[off + 1] << 8 | data[off + 2] << 16


@dataclass(frozen=True, slots=True)
class MeasurementRequest:
    """SPDM GET_MEASUREMENTS request (DSP0274 §10.11, Table 44), 37 bytes."""

    version: int
    code: int
    param1: int
    param2: int
    nonce: bytes
    slot_id: int

    @property
    def version_text(self) -> str:
        return f"{self.version >> 4}.{self.version & 0xF}"


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    """One DMTF measurement block (DSP0274 §10.11.1): index 1..254, DMTF type, raw value."""

    index: int
    spec: int
    dmtf_type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class OpaqueField:
    """One NVIDIA opaque-data TLV, kept raw; ``name`` is ``UNKNOWN_<type>`` for unknown types."""

    type: int
    value: bytes

    @property
    def name(self) -> str:
        return OPAQUE_TYPE_NAMES.get(self.type, f"UNKNOWN_{self.type}")


def _ascii_field(field: OpaqueField) -> str:
    """NUL-terminated / NUL-padded ASCII text (DRIVER_VERSION, PROJECT, CHIP_SKU, ...)."""
    text = field.value.split(b"\0", 1)[0]
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise SpdmError(
            f"opaque field {field.name} is not ASCII text: {field.value.hex()}"
        ) from None
    if not decoded.isprintable():
        raise SpdmError(f"opaque field {field.name} has control characters: {field.value.hex()}")
    return decoded


def format_vbios_version(value: bytes) -> str:
    """VBIOS version text of the 8-byte opaque field (as ``format_vbios_version`` in NVIDIA's SDK).

    Bytes 0..3 are a little-endian u32 printed as four hex bytes, byte 4 is the fifth part:
    ``00 cf 00 96 02 00 00 00`` -> ``96.00.cf.00.02``.
    """
    if len(value) < 5:
        raise SpdmError(f"opaque field VBIOS_VERSION has {len(value)} bytes, need at least 5")
    word = value[3::-1].hex()
    return ".".join([word[0:2], word[2:4], word[4:6], word[6:8], f"{value[4]:02x}"])


@dataclass(frozen=True)
class OpaqueData:
    """NVIDIA opaque data of a MEASUREMENTS response: the TLVs in order, with typed accessors.

    Accessors return ``None`` when the field is absent; text fields are validated when the
    report is parsed, so the accessors never raise.
    """

    fields: tuple[OpaqueField, ...]

    def raw(self, name_or_type: str | int) -> bytes | None:
        """The value of the first TLV of this type (number or name), or ``None``."""
        t = _TYPE_BY_NAME.get(name_or_type) if isinstance(name_or_type, str) else name_or_type
        return next((f.value for f in self.fields if f.type == t), None)

    def _text(self, name: str) -> str | None:
        t = _TYPE_BY_NAME[name]
        field = next((f for f in self.fields if f.type == t), None)
        return None if field is None else _ascii_field(field)

    @cached_property
    def driver_version(self) -> str | None:
        return self._text("DRIVER_VERSION")

    @cached_property
    def vbios_version(self) -> str | None:
        raw = self.raw("VBIOS_VERSION")
        return None if raw is None else format_vbios_version(raw)

    @cached_property
    def project(self) -> str | None:
        return self._text("PROJECT")

    @cached_property
    def project_sku(self) -> str | None:
        return self._text("PROJECT_SKU")

    @cached_property
    def project_sku_mod(self) -> str | None:
        return self._text("PROJECT_SKU_MOD")

    @cached_property
    def chip_sku(self) -> str | None:
        return self._text("CHIP_SKU")

    @cached_property
    def chip_sku_mod(self) -> str | None:
        return self._text("CHIP_SKU_MOD")

    @cached_property
    def chip_info(self) -> str | None:
        return self._text("CHIP_INFO")

    @property
    def fwid(self) -> bytes | None:
        return self.raw("FWID")

    @property
    def board_id(self) -> int | None:
        raw = self.raw("BOARD_ID")
        return None if raw is None else int.from_bytes(raw, "little")

    @property
    def nvdec0_status(self) -> str | None:
        raw = self.raw("NVDEC0_STATUS")
        return None if raw is None else STATUS_BYTES.get(raw[0] if raw else -1, raw.hex())

    @property
    def protected_pcie_status(self) -> str | None:
        raw = self.raw("PROTECTED_PCIE_STATUS")
        return None if raw is None else STATUS_BYTES.get(raw[0] if raw else -1, raw.hex())

    @property
    def opaque_data_version(self) -> int | None:
        raw = self.raw("OPAQUE_DATA_VERSION")
        return None if raw is None else int.from_bytes(raw, "little")

    @property
    def feature_flag(self) -> str | None:
        raw = self.raw("FEATURE_FLAG")
        if raw is None:
            return None
        value = int.from_bytes(raw, "little")
        return FEATURE_FLAGS.get(value, str(value))

    @property
    def switch_pdis(self) -> list[str]:
        """Distinct NVSwitch PDIs (8 bytes each) in first-seen order."""
        raw = self.raw("SWITCH_PDI") or b""
        seen: dict[str, None] = {}
        for off in range(0, len(raw) - len(raw) % 8, 8):
            seen.setdefault(raw[off : off + 8].hex(), None)
        return list(seen)

    @property
    def msrscnt(self) -> list[int] | None:
        raw = self.raw("MSRSCNT")
        if raw is None:
            return None
        return [int.from_bytes(raw[o : o + 4], "little") for o in range(0, len(raw) - 3, 4)]


@dataclass(frozen=True)
class MeasurementsResponse:
    """SPDM MEASUREMENTS response (DSP0274 §10.11, Table 45) with NVIDIA opaque data."""

    version: int
    code: int
    param1: int
    param2: int
    blocks: tuple[MeasurementBlock, ...]
    nonce: bytes  # responder nonce: GPU-random, not the caller's
    opaque: OpaqueData
    signature: bytes


@dataclass(frozen=True)
class AttestationReport:
    """A parsed GPU attestation report; ``raw`` is the exact input bytes."""

    raw: bytes
    request: MeasurementRequest
    response: MeasurementsResponse

    @property
    def signed_bytes(self) -> bytes:
        """What the GPU signed: request ‖ response without the trailing signature."""
        return self.raw[: len(self.raw) - SIGNATURE_LENGTH]

    @property
    def signature(self) -> bytes:
        return self.response.signature

    @property
    def nonce(self) -> bytes:
        """The requester nonce: the caller's 32 bytes, what binds the evidence to a request."""
        return self.request.nonce

    def measurement(self, index: int) -> bytes | None:
        """The value of measurement block ``index`` (1-based SPDM index), or ``None``."""
        return next((b.value for b in self.response.blocks if b.index == index), None)

    @property
    def nonzero_blocks(self) -> int:
        return sum(1 for b in self.response.blocks if b.value.strip(b"\0"))


def parse_request(data: bytes) -> MeasurementRequest:
    """Parse the 37-byte GET_MEASUREMENTS request at the start of ``data``."""
    if len(data) < REQUEST_LENGTH:
        raise SpdmError(f"report has {len(data)} bytes, shorter than the 37-byte request")
    if data[1] != GET_MEASUREMENTS:
        raise SpdmError(f"request code 0x{data[1]:02x} is not GET_MEASUREMENTS (0xe0)", 1)
    if data[0] >> 4 != 1:
        raise SpdmError(f"unsupported SPDM version 0x{data[0]:02x} in request", 0)
    if not data[2] & 0x01:
        raise SpdmError("request param1 does not ask for a signature: evidence is unsigned", 2)
    return MeasurementRequest(
        version=data[0],
        code=data[1],
        param1=data[2],
        param2=data[3],
        nonce=bytes(data[4:36]),
        slot_id=data[36],
    )


def _parse_blocks(data: bytes, start: int, length: int, count: int) -> tuple[MeasurementBlock, ...]:
    blocks: list[MeasurementBlock] = []
    seen: set[int] = set()
    off, end = start, start + length
    while off < end:
        if end - off < 7:
            raise SpdmError("truncated measurement block header", off)
        index, spec, size, dmtf_type, value_size = _BLOCK_HEADER.unpack_from(data, off)
        if not spec & DMTF_MEASUREMENT_SPEC:
            raise SpdmError(
                f"measurement block {index}: specification 0x{spec:02x} is not DMTF", off
            )
        if size < 3 or off + 4 + size > end:
            raise SpdmError(f"measurement block {index}: size {size} overruns the record", off)
        if value_size != size - 3:
            raise SpdmError(
                f"measurement block {index}: value size {value_size} != block size {size} - 3", off
            )
        if index in seen:
            raise SpdmError(f"measurement block index {index} appears twice", off)
        seen.add(index)
        blocks.append(
            MeasurementBlock(index, spec, dmtf_type, bytes(data[off + 7 : off + 4 + size]))
        )
        off += 4 + size
    if len(blocks) != count:
        raise SpdmError(f"record holds {len(blocks)} blocks, header says {count}", start - 4)
    return tuple(blocks)


def _parse_opaque(data: bytes, start: int, length: int) -> OpaqueData:
    fields: list[OpaqueField] = []
    off, end = start, start + length
    while off < end:
        if end - off < 4:
            raise SpdmError(f"{end - off} stray bytes at the end of the opaque data", off)
        t, size = _u16(data, off), _u16(data, off + 2)
        if off + 4 + size > end:
            raise SpdmError(f"opaque field type {t} of {size} bytes overruns the opaque data", off)
        fields.append(OpaqueField(t, bytes(data[off + 4 : off + 4 + size])))
        off += 4 + size
    opaque = OpaqueData(tuple(fields))
    # Decode every text field now, so that a bad one is an error here, not later.
    for name in (
        "driver_version",
        "vbios_version",
        "project",
        "project_sku",
        "project_sku_mod",
        "chip_sku",
        "chip_sku_mod",
        "chip_info",
    ):
        getattr(opaque, name)
    return opaque


def parse_attestation_report(data: bytes) -> AttestationReport:
    """Parse a GPU attestation report (request ‖ response); raise :class:`SpdmError` if malformed.

    Checks the framing only (codes, versions, lengths, block format); signature and meaning are
    checked by :mod:`teelog.attestation.gpu.verify`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SpdmError(f"attestation report must be bytes, not {type(data).__name__}")
    data = bytes(data)
    request = parse_request(data)
    r = REQUEST_LENGTH
    if len(data) - r < _MIN_RESPONSE:
        raise SpdmError(f"response has {len(data) - r} bytes, shorter than the minimum", r)
    if data[r + 1] != MEASUREMENTS:
        raise SpdmError(f"response code 0x{data[r + 1]:02x} is not MEASUREMENTS (0x60)", r + 1)
    if data[r] != request.version:
        raise SpdmError(
            f"response version 0x{data[r]:02x} != request version 0x{request.version:02x}",
            r,
        )
    count, record_len = data[r + 4], _u24(data, r + 5)
    record_start = r + 8
    after_record = record_start + record_len
    if after_record + 32 + 2 > len(data):
        raise SpdmError(f"measurement record length {record_len} overruns the report", r + 5)
    blocks = _parse_blocks(data, record_start, record_len, count)
    nonce = bytes(data[after_record : after_record + 32])
    opaque_len = _u16(data, after_record + 32)
    opaque_start = after_record + 34
    sig_start = opaque_start + opaque_len
    if sig_start + SIGNATURE_LENGTH > len(data):
        raise SpdmError(
            f"opaque length {opaque_len} leaves {len(data) - sig_start} bytes for the "
            f"{SIGNATURE_LENGTH}-byte signature",
            after_record + 32,
        )
    if sig_start + SIGNATURE_LENGTH != len(data):
        raise SpdmError(
            f"{len(data) - sig_start - SIGNATURE_LENGTH} unexpected bytes after the signature",
            sig_start + SIGNATURE_LENGTH,
        )
    opaque = _parse_opaque(data, opaque_start, opaque_len)
    response = MeasurementsResponse(
        version=data[r],
        code=data[r + 1],
        param1=data[r + 2],
        param2=data[r + 3],
        blocks=blocks,
        nonce=nonce,
        opaque=opaque,
        signature=data[sig_start:],
    )
    return AttestationReport(raw=data, request=request, response=response)
