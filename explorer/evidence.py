"""The raw evidence behind an attestation entry, re-parsed for display (never for verdicts).

An attestation entry commits to its raw report (``blobs.report``) and the collateral used
(``blobs.collateral``). The entry page shows what is inside them, parsed with the
verification library's own parsers (``attestation.quote.parse_quote``,
``attestation.collateral.load_collateral``, ``attestation.gpu``): every quote field with what
it measures, the event log and its replay per RTMR against the quote, the compose file as text
with its SHA-256, one row per GPU, and the collateral's validity window. The verdict shown is
always the one in the entry; this module only explains it, and every parse failure becomes a
message on the page rather than an error.

The report is untrusted (any node can publish anything): sizes and counts are bounded and
every value stays plain data up to the (autoescaped) template.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from teelog.attestation.collateral import load_collateral
from teelog.attestation.eventlog import parse_event_log
from teelog.attestation.gpu.certs import describe, leaf_fwid, load_certificate
from teelog.attestation.gpu.payload import decode_nvidia_payload
from teelog.attestation.gpu.spdm import parse_attestation_report
from teelog.attestation.quote import decode_quote_bytes, parse_quote
from teelog.attestation.times import parse_rfc3339

MAX_EVENTS = 2000
MAX_WALK = 64  # dicts examined while looking for attestations in a report

# One line per quote field: what it measures (Intel TDX DCAP Quote Generation Library, "Quote
# Format"; Intel TDX Module ABI spec, TDREPORT / TDINFO_STRUCT).
QUOTE_FIELDS: dict[str, str] = {
    "version": "Quote format version (4 or 5 for TDX, 3 for SGX).",
    "tee_type": "Which TEE produced the report: TDX (0x81) or SGX (0x00).",
    "attestation_key_type": "Signature scheme of the attestation key (2 = ECDSA P-256).",
    "qe_svn": "Security version of the Quoting Enclave that signed the quote.",
    "pce_svn": "Security version of the Provisioning Certification Enclave.",
    "qe_vendor_id": "Vendor of the Quoting Enclave (Intel's is 939a7233…).",
    "user_data": "First 20 bytes of the QE's user data (platform identifier of the QE).",
    "certification_data_type": "How the attestation key is certified (6 = QE report + PCK chain).",
    "fmspc": "Family-Model-Stepping-Platform-CustomSKU of the CPU: selects the TCB collateral.",
    "ppid": "Platform Provisioning ID from the PCK certificate (identifies the CPU package).",
    "pce_id": "Identifier of the PCE in the PCK certificate.",
    "ca": "Which Intel CA issued the PCK certificate (platform or processor).",
    "sha256": "SHA-256 of the whole quote: the quote hash you can search for.",
    "report.version": "TD report version (1.0 for TDX 1.x, 1.5 with the service-TD fields).",
    "report.tee_tcb_svn": "Security versions of the TDX module and its components (TCB level).",
    "report.mr_seam": "Measurement of the TDX module (SEAM) loaded on the CPU.",
    "report.mr_signer_seam": "Signer of the TDX module (all zeros for Intel's own module).",
    "report.seam_attributes": "Attributes of the TDX module (all zeros in production).",
    "report.td_attributes": "TD attributes: debug mode and other properties of the guest VM.",
    "report.xfam": "Extended CPU features (XSAVE) the guest VM may use.",
    "report.mr_td": "MRTD: measurement of the initial guest memory (the virtual firmware).",
    "report.mr_config_id": "Set by the VM's host at launch; dstack puts 0x01 ‖ compose hash here.",
    "report.mr_owner": "Identifier of the TD owner, set at launch (unused by dstack: zeros).",
    "report.mr_owner_config": "Owner-defined configuration, set at launch (zeros in dstack).",
    "report.rtmr0": "RTMR0: firmware configuration (TD HOB, ACPI tables) measured at boot.",
    "report.rtmr1": "RTMR1: the OS kernel measured by the firmware.",
    "report.rtmr2": "RTMR2: kernel command line and initrd.",
    "report.rtmr3": "RTMR3: runtime events (dstack: app id, compose hash, instance id, keys).",
    "report.report_data": "64 bytes chosen by the guest: signing address ‖ nonce (the binding).",
    "report.tee_tcb_svn2": "TDX 1.5: security versions of the TDX module after an update.",
    "report.mr_service_td": "TDX 1.5: measurement of bound service TDs (e.g. migration TD).",
    "report.cpu_svn": "SGX: security version of the CPU microcode and firmware.",
    "report.attributes": "SGX: enclave attributes (debug, mode64bit, …).",
    "report.mr_enclave": "SGX: measurement of the enclave's code and data.",
    "report.mr_signer": "SGX: hash of the key that signed the enclave.",
}


@dataclass(slots=True)
class QuoteView:
    """The parsed quote as rows ``(name, value, explanation)``, or why it could not be read."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    rtmrs: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class RtmrReplay:
    """One RTMR replayed from the event log (SHA-384 extend) and compared with the quote."""

    index: int
    events: int
    replayed: str
    quoted: str | None

    @property
    def matches(self) -> bool | None:
        return None if self.quoted is None else self.replayed == self.quoted


@dataclass(slots=True)
class EventLogView:
    events: list[dict[str, Any]] = field(default_factory=list)
    replay: list[RtmrReplay] = field(default_factory=list)
    error: str | None = None
    truncated: bool = False


@dataclass(slots=True)
class ComposeView:
    text: str
    sha256: str
    measured: str | None

    @property
    def matches(self) -> bool | None:
        return None if not self.measured else self.sha256 == self.measured.lower()


@dataclass(slots=True)
class GpuView:
    index: int
    arch: str | None = None
    driver_version: str | None = None
    vbios_version: str | None = None
    fwid: str | None = None
    nonce: str | None = None
    chain: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class AttestationEvidence:
    """Everything shown for one attestation of an entry."""

    verdict: dict[str, Any]
    found: bool = False
    quote: QuoteView | None = None
    event_log: EventLogView | None = None
    compose: ComposeView | None = None
    gpus: list[GpuView] = field(default_factory=list)
    gpu_error: str | None = None


@dataclass(slots=True)
class CollateralView:
    sha256: str
    fmspc: str | None = None
    tee: str | None = None
    freshness: dict[str, Any] | None = None
    problem_at_verification: str | None = None
    error: str | None = None


def _flatten(prefix: str, obj: dict[str, Any], out: list[tuple[str, str, str]]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if key == "report" and isinstance(value, dict):
            _flatten("report.", value, out)
            continue
        if isinstance(value, dict | list):
            text = json.dumps(value, sort_keys=True)
        else:
            text = "" if value is None else str(value)
        out.append((name, text, QUOTE_FIELDS.get(name, "")))


def quote_view(quote_text: Any) -> QuoteView:
    """Parse a quote (hex, base64 or bytes) with ``attestation.quote.parse_quote``."""
    view = QuoteView()
    try:
        raw = decode_quote_bytes(quote_text if isinstance(quote_text, str | bytes) else "")
        quote = parse_quote(raw)
    except Exception as exc:  # display only: say why it could not be parsed
        view.error = f"the quote could not be parsed: {exc}"
        return view
    _flatten("", quote.to_json(), view.rows)
    report = quote.report.to_json()
    view.rtmrs = [report.get(f"rtmr{i}", "") for i in range(4)] if quote.is_tdx else []
    return view


def _payload_text(payload: bytes) -> str:
    """A payload as text when it is printable UTF-8 (most dstack runtime events), else hex."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.hex()
    return text if text.isprintable() else payload.hex()


def event_log_view(raw: Any, quoted_rtmrs: list[str]) -> EventLogView:
    """The event log's events and its replay per RTMR, by ``attestation.eventlog``: RTMR0-2
    from the claimed digests, RTMR3 from each runtime event's name and payload (so an altered
    payload shows as a mismatch), compared with the quote's RTMRs."""
    view = EventLogView()
    try:
        log = parse_event_log(raw)
    except Exception as exc:  # display only: say why it could not be read
        view.error = f"the event log could not be parsed: {exc}"
        return view
    events = log.events
    if len(events) > MAX_EVENTS:
        view.truncated = True
    tampered = {id(e) for e in log.tampered_runtime_events()}
    for event in events[:MAX_EVENTS]:
        view.events.append(
            {
                "imr": event.imr,
                "event_type": event.event_type,
                "event": event.name,
                "digest": event.digest.hex() if event.digest else None,
                "payload": _payload_text(event.payload),
                "tampered": id(event) in tampered,
            }
        )
    try:
        replayed = log.replay()
    except Exception as exc:
        view.error = f"the event log could not be replayed: {exc}"
        return view
    for i in range(4):
        quoted = quoted_rtmrs[i].lower() if i < len(quoted_rtmrs) else None
        count = sum(1 for e in events if e.imr == i)
        view.replay.append(RtmrReplay(i, count, replayed[i].hex(), quoted))
    return view


def _gpu_views(payload: Any) -> tuple[list[GpuView], str | None]:
    try:
        decoded = decode_nvidia_payload(payload)
    except Exception as exc:
        return [], f"the GPU evidence could not be decoded: {exc}"
    views = []
    for ev in decoded.evidence:
        gpu = GpuView(index=ev.index, arch=ev.arch)
        try:
            report = parse_attestation_report(ev.report)
            gpu.driver_version = report.response.opaque.driver_version
            gpu.vbios_version = report.response.opaque.vbios_version
            fwid = report.response.opaque.fwid
            gpu.fwid = fwid.hex() if fwid else None
            gpu.nonce = report.request.nonce.hex()
        except Exception as exc:
            gpu.error = f"the SPDM report could not be parsed: {exc}"
        try:
            certs = [load_certificate(der) for der in ev.certificates]
            gpu.chain = [describe(c) for c in certs]
            if gpu.fwid is None and certs:
                leaf = leaf_fwid(certs[0])
                gpu.fwid = leaf.hex() if leaf else None
        except Exception as exc:
            gpu.error = (gpu.error + "; " if gpu.error else "") + f"certificate chain: {exc}"
        views.append(gpu)
    return views, None


def _candidates(report: Any) -> list[dict[str, Any]]:
    """Dicts in the report that carry a quote (breadth first, bounded)."""
    found: list[dict[str, Any]] = []
    queue: list[Any] = [report]
    seen = 0
    while queue and seen < MAX_WALK:
        item = queue.pop(0)
        if isinstance(item, list):
            queue.extend(item[:MAX_WALK])
            continue
        if not isinstance(item, dict):
            continue
        seen += 1
        if isinstance(item.get("intel_quote") or item.get("quote"), str):
            found.append(item)
        queue.extend(v for k, v in item.items() if isinstance(v, dict | list) and k != "info")
    return found


def _match(
    verdict: dict[str, Any], position: int, total: int, raws: list[dict[str, Any]]
) -> dict[str, Any] | None:
    address = verdict.get("signing_address")
    if isinstance(address, str):
        for raw in raws:
            if str(raw.get("signing_address", "")).lower() == address.lower():
                return raw
    # By position only when the report has exactly one raw attestation per verdict.
    return raws[position] if len(raws) == total else None


def attestation_evidence(verdicts: list[dict[str, Any]], report: Any) -> list[AttestationEvidence]:
    """One :class:`AttestationEvidence` per verdict, matched to the report's raw attestations
    by signing address (then by position)."""
    raws = _candidates(report) if report is not None else []
    out = []
    for position, verdict in enumerate(verdicts):
        ev = AttestationEvidence(verdict=verdict)
        raw = _match(verdict, position, len(verdicts), raws)
        out.append(ev)
        if raw is None:
            continue
        ev.found = True
        ev.quote = quote_view(raw.get("intel_quote") or raw.get("quote"))
        info = raw.get("info") if isinstance(raw.get("info"), dict) else {}
        tcb = info.get("tcb_info") if isinstance(info.get("tcb_info"), dict) else {}
        log_raw = raw.get("event_log")
        if log_raw is None:
            log_raw = tcb.get("event_log")
        if log_raw is not None:
            ev.event_log = event_log_view(log_raw, ev.quote.rtmrs)
        compose = tcb.get("app_compose")
        if isinstance(compose, str):
            meas = verdict.get("measurements")
            measured = meas.get("compose_hash") if isinstance(meas, dict) else None
            ev.compose = ComposeView(
                text=compose,
                sha256=hashlib.sha256(compose.encode("utf-8")).hexdigest(),
                measured=measured if isinstance(measured, str) else None,
            )
        if raw.get("nvidia_payload") is not None:
            ev.gpus, ev.gpu_error = _gpu_views(raw.get("nvidia_payload"))
    return out


def collateral_view(sha256: str, data: bytes | None, verified_at: str | None) -> CollateralView:
    """The collateral's identity and validity window, and whether it was valid at verification."""
    view = CollateralView(sha256=sha256)
    if data is None:
        view.error = "blob not in this explorer's blob store"
        return view
    try:
        doc = load_collateral(data)
    except Exception as exc:
        view.error = f"the collateral could not be read: {exc}"
        return view
    view.fmspc, view.tee = doc.fmspc, doc.tee
    view.freshness = doc.freshness.to_json()
    if verified_at:
        try:
            at = parse_rfc3339(verified_at)
            view.problem_at_verification = doc.freshness.problem_at(at)
        except ValueError:
            view.problem_at_verification = f"verified_at {verified_at!r} is not a time"
    return view


class EvidenceCache:
    """Parsed evidence per entry index, least recently used first out.

    Entries are immutable and blobs content-addressed, so what was parsed for an index stays
    true; parsing a report (quotes, certificate chains, SPDM reports of 8 GPUs) costs tens of
    milliseconds, a cache hit nothing. Bounded to ``size`` entries.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: int, compute: Callable[[], tuple[dict[str, Any], bool]]) -> dict[str, Any]:
        """The evidence of ``index``; ``compute`` returns (evidence, cacheable)."""
        with self._lock:
            if index in self._items:
                self._items.move_to_end(index)
                return self._items[index]
        value, cacheable = compute()
        if cacheable:
            with self._lock:
                self._items[index] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value
