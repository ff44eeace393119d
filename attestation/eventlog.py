"""The dstack event log: RTMR replay, runtime-event semantics, compose and info bindings.

An entry is ``{"imr": 0..3, "event_type": u32, "digest": hex, "event": name,
"event_payload": hex}`` (dstack ``cc-eventlog/src/tdx.rs``). A TDX RTMR starts as 48 zero
bytes and is extended as ``rtmr = SHA-384(rtmr ‖ digest)`` (Intel TDX Module spec,
TDG.MR.RTMR.EXTEND).

RTMR0-2 hold firmware and boot events, replayed from their ``digest`` fields. RTMR3 holds
dstack runtime events (type ``0x08000001``) whose digest we always recompute from the name
and payload, never trusting the ``digest`` field (dstack 0.6 even ships it empty):

- v1: ``SHA-384(le32(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload)`` — verified on every RTMR3
  event of every real log in tests/data;
- v2 (entries with ``"version": 2``): ``SHA-384(JCS({"name", "payload": hex, "type"}))``.

So a payload that was altered after the fact changes the replayed RTMR3 and fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from .errors import EventLogError
from .inputs import UntrustedJSONError, parse_json
from .quote import TdReport
from .verdict import Check

RUNTIME_EVENT_TYPE = 0x08000001
RTMR_SIZE = 48
_RUNTIME_PREFIX = RUNTIME_EVENT_TYPE.to_bytes(4, "little") + b":"


@dataclass(frozen=True, slots=True)
class Event:
    imr: int
    event_type: int
    digest: bytes | None  # as claimed by the log; None when absent or empty
    name: str
    payload: bytes
    version: int = 1
    # What the event extends its RTMR with (see measured_digest); computed once at parse time.
    measured: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def is_runtime(self) -> bool:
        return self.event_type == RUNTIME_EVENT_TYPE

    def measured_digest(self) -> bytes:
        """The digest this event extends its RTMR with.

        Runtime events: recomputed from name and payload. Other events: the claimed digest,
        right-padded to 48 bytes as dstack's ``replay_rtmr`` does.
        """
        if self.measured is not None:
            return self.measured
        if self.is_runtime:
            return runtime_event_digest(self.name, self.payload, self.version)
        if self.digest is None:
            raise EventLogError(f"{self.name or 'event'} in RTMR{self.imr} has no digest")
        return self.digest.ljust(RTMR_SIZE, b"\0")


def runtime_event_digest(name: str, payload: bytes, version: int = 1) -> bytes:
    """The RTMR3 digest of a dstack runtime event (rules in the module docstring)."""
    if version == 2:
        doc = {"name": name, "payload": payload.hex(), "type": RUNTIME_EVENT_TYPE}
        return hashlib.sha384(rfc8785.dumps(doc)).digest()
    return hashlib.sha384(_RUNTIME_PREFIX + name.encode() + b":" + payload).digest()


@dataclass(frozen=True, slots=True)
class EventLog:
    events: tuple[Event, ...]
    # RTMR3 events in order, and their payloads by name: indexes built once.
    _runtime: tuple[Event, ...] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, list[bytes]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        runtime = tuple(e for e in self.events if e.imr == 3)
        by_name: dict[str, list[bytes]] = {}
        for e in runtime:
            by_name.setdefault(e.name, []).append(e.payload)
        object.__setattr__(self, "_runtime", runtime)
        object.__setattr__(self, "_by_name", by_name)

    def replay(self) -> tuple[bytes, bytes, bytes, bytes]:
        """RTMR0-3 as the events extend them from 48 zero bytes."""
        rtmrs = [bytes(RTMR_SIZE)] * 4
        sha384 = hashlib.sha384
        for event in self.events:
            digest = event.measured if event.measured is not None else event.measured_digest()
            rtmrs[event.imr] = sha384(rtmrs[event.imr] + digest).digest()
        return rtmrs[0], rtmrs[1], rtmrs[2], rtmrs[3]

    def runtime_events(self) -> list[Event]:
        return list(self._runtime)

    def tampered_runtime_events(self) -> list[Event]:
        """Runtime events whose claimed digest disagrees with their name and payload."""
        return [
            e
            for e in self.runtime_events()
            if e.is_runtime and e.digest is not None and e.digest != e.measured_digest()
        ]

    def values(self, name: str) -> list[bytes]:
        return list(self._by_name.get(name, ()))

    def value(self, name: str) -> bytes | None:
        """The payload of the first runtime event called ``name``."""
        found = self.values(name)
        return found[0] if found else None

    def app_events(self) -> list[Event]:
        """Events the application emitted itself: those after ``system-ready``."""
        runtime = self.runtime_events()
        for i, event in enumerate(runtime):
            if event.name == "system-ready":
                return runtime[i + 1 :]
        return []

    def identity(self) -> dict[str, str | None]:
        """app-id, compose-hash, instance-id, os-image-hash (hex) and key-provider (text)."""

        def hex_of(name: str) -> str | None:
            value = self.value(name)
            return value.hex() if value else None

        provider = self.value("key-provider")
        key_provider = None
        if provider:
            try:
                key_provider = provider.decode("utf-8")
            except UnicodeDecodeError:
                key_provider = provider.hex()
        return {
            "app_id": hex_of("app-id"),
            "compose_hash": hex_of("compose-hash"),
            "instance_id": hex_of("instance-id"),
            "os_image_hash": hex_of("os-image-hash"),
            "key_provider": key_provider,
        }


def parse_event_log(data: Any) -> EventLog:
    """An event log from its JSON (a list, or a string holding the list, as dstack sends it).

    Raises :class:`EventLogError` naming the first malformed entry.
    """
    if isinstance(data, bytes | bytearray):
        data = bytes(data).decode("utf-8", "replace")
    if isinstance(data, str):
        try:
            data = parse_json(data)
        except UntrustedJSONError as exc:
            raise EventLogError(f"event log is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise EventLogError(f"event log must be a list, got {type(data).__name__}")
    return EventLog(tuple(_event(i, item) for i, item in enumerate(data)))


def _event(index: int, item: Any) -> Event:
    # ``type(x) is int`` on purpose: JSON booleans are ints to isinstance.
    if type(item) is not dict:
        raise EventLogError(f"event log entry {index} is not an object")
    imr = item.get("imr")
    if type(imr) is not int or not 0 <= imr <= 3:
        raise EventLogError(f"event log entry {index}: imr must be 0..3, got {imr!r}")
    event_type = item.get("event_type")
    if type(event_type) is not int or event_type < 0:
        raise EventLogError(f"event log entry {index}: event_type must be a non-negative integer")
    name = item.get("event", "")
    if type(name) is not str:
        raise EventLogError(f"event log entry {index}: event must be a string")
    payload = _hex(item.get("event_payload", ""), index, "event_payload")
    digest_text = item.get("digest", "")
    digest = _hex(digest_text, index, "digest") if digest_text else None
    if digest is not None and len(digest) > RTMR_SIZE:
        raise EventLogError(f"event log entry {index}: digest longer than 48 bytes")
    version = item.get("version", 1)
    if version not in (1, 2) or type(version) is not int:
        raise EventLogError(f"event log entry {index}: unknown event version {version!r}")
    if event_type == RUNTIME_EVENT_TYPE:
        measured: bytes | None = runtime_event_digest(name, payload, version)
    else:
        measured = digest.ljust(RTMR_SIZE, b"\0") if digest is not None else None
    return Event(imr, event_type, digest, name, payload, version, measured)


def _hex(value: Any, index: int, key: str) -> bytes:
    if value is None:
        return b""
    if type(value) is not str:
        raise EventLogError(f"event log entry {index}: {key} must be a hex string")
    try:
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    except ValueError as exc:
        raise EventLogError(f"event log entry {index}: {key} is not hex") from exc


def rtmr_check(log: EventLog, report: TdReport) -> Check:
    """``eventlog.rtmr``: the log replays to RTMR0-3 of the (verified) quote."""
    try:
        replayed = log.replay()
    except EventLogError as exc:
        return Check("eventlog.rtmr", "fail", f"cannot replay: {exc}")
    bad = [i for i in range(4) if replayed[i] != report.rtmrs[i]]
    foreign = [e for e in log.runtime_events() if not e.is_runtime]
    tampered = log.tampered_runtime_events()
    problems = []
    if bad:
        problems.append(
            "; ".join(
                f"RTMR{i} replays to {replayed[i].hex()[:16]}…, quote has "
                f"{report.rtmrs[i].hex()[:16]}…"
                for i in bad
            )
        )
    if tampered:
        names = ", ".join(repr(e.name) for e in tampered)
        problems.append(f"digest field disagrees with payload for {names}")
    if foreign:
        types = ", ".join(hex(e.event_type) for e in foreign)
        problems.append(f"RTMR3 events of non-runtime type {types} cannot be recomputed")
    if problems:
        return Check("eventlog.rtmr", "fail", "; ".join(problems))
    runtime = len(log.runtime_events())
    return Check(
        "eventlog.rtmr",
        "pass",
        f"{len(log.events)} events replay to RTMR0-3; {runtime} RTMR3 digests recomputed "
        "from event name and payload",
    )


def compose_check(
    log: EventLog,
    report: TdReport,
    app_compose: str | None,
    claimed_hashes: dict[str, str] | None = None,
) -> Check:
    """``eventlog.compose``: the measured compose hash against the compose file and MRCONFIGID.

    The compose hash is the payload of the RTMR3 ``compose-hash`` event; it must equal
    SHA-256 of the exact ``app_compose`` string, and a v1 ``mr_config_id`` must be
    ``01 ‖ compose_hash ‖ 15 zero bytes`` (dstack ``dstack-types/src/mr_config.rs``).
    ``claimed_hashes`` (e.g. ``info.compose_hash``) must agree as well.
    """
    values = log.values("compose-hash")
    if not values:
        return Check("eventlog.compose", "skip", "no compose-hash event in RTMR3")
    if len(set(values)) > 1:
        return Check("eventlog.compose", "fail", "several different compose-hash events")
    measured = values[0]
    notes = []
    for where, claimed in (claimed_hashes or {}).items():
        if claimed and claimed.lower().removeprefix("0x") != measured.hex():
            return Check(
                "eventlog.compose",
                "fail",
                f"{where} {claimed} differs from the measured compose hash {measured.hex()}",
            )
    config = report.mr_config_id
    if config[0] == 0x01:
        expected = b"\x01" + measured + bytes(len(config) - 1 - len(measured))
        if config != expected:
            return Check(
                "eventlog.compose",
                "fail",
                f"mr_config_id {config.hex()} is not 01 ‖ compose hash {measured.hex()}",
            )
        notes.append("mr_config_id = 01 ‖ compose hash")
    elif not any(config):
        notes.append("mr_config_id unused (all zero); compose hash bound through RTMR3 only")
    else:
        notes.append(f"mr_config_id version {config[0]:#04x} not checked")
    if app_compose is None:
        return Check(
            "eventlog.compose",
            "skip",
            f"no app_compose to compare with the measured compose hash {measured.hex()}",
        )
    actual = hashlib.sha256(app_compose.encode("utf-8")).digest()
    if actual != measured:
        return Check(
            "eventlog.compose",
            "fail",
            f"sha256(app_compose) {actual.hex()} differs from the measured compose hash "
            f"{measured.hex()}",
        )
    return Check(
        "eventlog.compose",
        "pass",
        f"sha256(app_compose) = measured compose hash {measured.hex()}; " + "; ".join(notes),
    )


def info_check(
    tcb_info: dict[str, Any] | None, info: dict[str, Any], log: EventLog | None, report: TdReport
) -> Check:
    """``eventlog.info``: what ``info`` claims (``tcb_info`` registers, app/instance ids, OS
    image hash) against the quote and the event log. Absent info is an optional ``skip``."""
    compared = []
    mismatches = []
    if tcb_info:
        registers = {"mrtd": report.mr_td, **{f"rtmr{i}": r for i, r in enumerate(report.rtmrs)}}
        for name, actual in registers.items():
            claimed = tcb_info.get(name)
            if claimed is None:
                continue
            compared.append(name)
            if not isinstance(claimed, str) or claimed.lower().removeprefix("0x") != actual.hex():
                mismatches.append(f"tcb_info.{name} {claimed!r} ≠ quote {actual.hex()}")
    if log is not None:
        identity = log.identity()
        for key, event_key in (
            ("app_id", "app_id"),
            ("instance_id", "instance_id"),
            ("os_image_hash", "os_image_hash"),
        ):
            for source, obj in (("info", info), ("tcb_info", tcb_info or {})):
                claimed = obj.get(key)
                if not claimed or identity[event_key] is None:
                    continue
                compared.append(f"{source}.{key}")
                if str(claimed).lower().removeprefix("0x") != identity[event_key]:
                    mismatches.append(f"{source}.{key} {claimed} ≠ event log {identity[event_key]}")
    if mismatches:
        return Check("eventlog.info", "fail", "; ".join(mismatches))
    if not compared:
        return Check(
            "eventlog.info", "skip", "report carries no info.tcb_info to compare", required=False
        )
    return Check("eventlog.info", "pass", f"{', '.join(compared)} match the quote and event log")
