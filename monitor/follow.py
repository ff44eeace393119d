"""``teelog monitor``: follow a served log, audit it, and alert on what matters.

Each poll (docs/monitor.md):

1. fetch ``/checkpoint`` and verify its Ed25519 signature with the pinned vkey and its origin
   (C2SP signed-note, tlog-checkpoint);
2. read every entry after the last verified size from the entry bundles (C2SP tlog-tiles),
   never skipping one, and recompute the tree from the saved compact range: the new root must
   be the checkpoint's. This proves both that the bundles are the tree's entries and that the
   new checkpoint extends the last verified one (the full-audit mode of Cert Spotter; RFC 9162
   §2.1.4 consistency follows, since the old tree is a prefix of the recomputed one). Steps 1
   and 2 are the audit core that ``teelog log verify`` runs too (``teelog.log.audit``);
3. for each attestation entry, re-verify the logged verdict offline from the report and
   collateral blobs at the entry's ``verified_at``, and compare each watched node's
   measurements with its previous attestation (``attestation.diff_measurements``);
4. record the new checkpoint and the alerts in the state file (atomically, fsynced), then
   deliver the alerts.

Any inconsistency (a checkpoint for a smaller tree, another root for the same size, entries
that do not hash to the signed root) stops the monitor at the last verified checkpoint, keeps
both checkpoints as evidence, and raises one alert; the consistency proof from the hash tiles
tells a fork from bad entry bundles. An event is raised once, however often it is seen.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from teelog.attestation.times import parse_rfc3339, rfc3339
from teelog.attestation.verdict import worst_status
from teelog.entries.attestation import attestations_of
from teelog.entries.changes import labelled, sanitised
from teelog.log.audit import AuditError, check_checkpoint, extend
from teelog.log.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from teelog.log.fsio import write_durable
from teelog.log.note import Ed25519Verifier, NoteError, parse_vkey
from teelog.log.policy import WitnessPolicy
from teelog.log.served import HttpLog, SourceError

from .alerts import AlertSink, DeliveryError
from .releases import Expectations, check_release, is_release_of
from .state import NodeView, evidence_dir, load_state, save_state
from .witness_views import SplitView, split_views

logger = logging.getLogger("teelog.monitor")

# A verdict "matches" when these agree; check details may be worded differently by another
# teelog version without changing what was verified.
_COMPARED = ("role", "model", "signing_address", "status", "measurements")


# Exit statuses of ``teelog monitor`` (their meaning: ``teelog.cli.EXIT_STATUS``).
EXIT_OK, EXIT_FOUND, EXIT_UNUSABLE = 0, 1, 2


class MonitorError(RuntimeError):
    """The monitor cannot run (bad key, unusable state); exit status 2."""


# A report re-verifier: (report blob, collateral blobs, nonce, at) -> attestation verdict JSONs.
Reverify = Callable[[bytes, list[bytes], str | None, datetime], list[dict[str, Any]]]


def reverify_with_teelog(
    report: bytes, collateral: list[bytes], nonce: str | None, at: datetime
) -> list[dict[str, Any]]:
    """Re-verify a report exactly as the collector did (``entries.verdict``), offline:
    only the logged collateral blobs are used, never a PCCS."""
    from teelog.attestation.collateral import Collateral, load_collateral
    from teelog.attestation.inputs import UntrustedJSONError, parse_json
    from teelog.entries.verdict import verify_report_bytes

    docs = [load_collateral(blob) for blob in collateral]
    try:
        doc: Any = parse_json(report)
    except UntrustedJSONError:
        doc = report  # the verifier says why it is not a report
    return verify_report_bytes(Collateral(docs), doc, nonce, at).attestations


@dataclass
class PollResult:
    """What one poll did: the verified size after it, entries read, alerts raised."""

    size: int
    entries_read: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0
    undelivered: int = 0
    denials: int = 0  # key_release denials of the watched model (counted, never alerted)


class Monitor:
    """Follows one log (``source``) trusted under ``vkey``; state and evidence in ``state_path``.

    ``nodes`` limits measurement alerts to those node names (None: every node). ``reverify``
    recomputes an attestation entry's verdict from its blobs (None: do not re-verify).
    ``releases`` checks the key broker's releases of one model against its owner's
    expectations (:mod:`teelog.monitor.releases`; None: releases are not checked).
    """

    def __init__(
        self,
        source: HttpLog,
        vkey: str,
        state_path: Path,
        sink: AlertSink,
        *,
        nodes: Iterable[str] | None = None,
        reverify: Reverify | None = reverify_with_teelog,
        releases: Expectations | None = None,
        witness_policy: WitnessPolicy | None = None,
    ) -> None:
        self.witness_policy = witness_policy
        try:
            key = parse_vkey(vkey)
        except NoteError as exc:
            raise MonitorError(f"--vkey: {exc}") from exc
        if not isinstance(key, Ed25519Verifier):
            raise MonitorError("--vkey is a witness cosignature key, not a log key")
        self.key = key
        self.source = source
        self.sink = sink
        self.state_path = state_path
        self.watched = None if nodes is None else set(nodes)
        self.reverify = reverify
        self.releases = releases
        try:
            self.state = load_state(state_path, vkey=vkey.strip(), origin=key.name)
            self.state.audit.edge()
        except ValueError as exc:
            raise MonitorError(str(exc)) from exc
        except AuditError as exc:
            raise MonitorError(f"{state_path}: {exc}") from exc

    # --- one poll -------------------------------------------------------------------------------

    def poll(self) -> PollResult:
        """Check the log once; raise :class:`SourceError` if it cannot be read (nothing is
        recorded then, and the next poll starts from the same verified checkpoint). Alerts
        still pending from earlier polls are delivered either way."""
        result = PollResult(size=self.state.size)
        try:
            self._check(result)
        finally:
            self._deliver(result)
            result.size = self.state.size
        return result

    def _check(self, result: PollResult) -> None:
        note = self.source.checkpoint()
        try:
            cp = open_checkpoint(note, self.key)
        except CheckpointError as exc:
            self._raise(result, self._invalid_checkpoint(note, str(exc)))
            return
        try:
            check_checkpoint(self.state.audit, cp)
            if cp.size > self.state.size:
                self._advance(cp, result)
        except AuditError as exc:
            if exc.kind == "unreadable":
                raise SourceError(str(exc)) from exc
            self._raise(result, self._inconsistency(cp, exc.kind, str(exc)))
            return
        if self.witness_policy is not None and self.state.size:
            self._compare_witnesses(result)

    def _compare_witnesses(self, result: PollResult) -> None:
        """Split-view check against each witness's latest view (teelog.monitor.witness_views)."""
        audit = self.state.audit
        verified = Checkpoint(self.key.name, audit.size, audit.root, note=audit.checkpoint)
        found, errors = split_views(
            list(self.witness_policy.witnesses.values()), self.key, verified,
            lambda a, b: self.source.reader(b).consistency_proof(a, b),
        )
        for name, err in errors.items():
            logger.warning("witness %s: cannot read its view: %s", name, err)
        for split in found:
            self._raise(result, self._split_view(split))

    def _advance(self, cp: Checkpoint, result: PollResult) -> None:
        """Read entries ``state.size`` .. ``cp.size - 1``; commit them if they make the root
        (:func:`teelog.log.audit.extend`), else raise its :class:`AuditError`."""
        state = self.state
        nodes = {name: NodeView(v.index, dict(v.measurements)) for name, v in state.nodes.items()}
        events: list[dict[str, Any]] = []
        denials = [0]

        def inspect(index: int, entry: bytes) -> None:
            events.extend(self._inspect(index, entry, nodes, denials))
            result.entries_read += 1

        entries = self.source.entries(state.size, cp.size)
        audited = extend(state.audit, cp, entries, lambda: self.source.reader(cp.size), inspect)
        # The checkpoint is verified and every entry read: commit it with its alerts.
        state.audit = audited
        state.nodes = nodes
        result.denials = denials[0]
        for event in events:
            self._record(result, event)
        save_state(self.state_path, state)

    # --- entries --------------------------------------------------------------------------------

    def _inspect(
        self, index: int, data: bytes, nodes: dict[str, NodeView], denials: list[int]
    ) -> list[dict[str, Any]]:
        from teelog.attestation.inputs import UntrustedJSONError, parse_json

        why = "the entry is not a JSON object with a type"
        try:
            entry = parse_json(data)
        except UntrustedJSONError as exc:  # deep nesting, huge integers, lone surrogates...
            entry, why = None, f"the entry is not JSON teelog reads: {exc}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            # The log is append-only: the entry stays, so it is reported (index, hash, bytes)
            # and the monitor goes on with the next one.
            return [
                self._entry_event(
                    index,
                    "entry.malformed",
                    why,
                    entry_sha256=hashlib.sha256(data).hexdigest(),
                    entry_b64=base64.b64encode(data[:4096]).decode("ascii"),
                    entry_size=len(data),
                )
            ]
        if entry["type"] == "receipt":
            return self._check_receipt(index, entry) if self.reverify is not None else []
        if self.releases is not None:
            released = is_release_of(entry, self.releases.model)
            if released is False:
                denials[0] += 1
            elif released:
                return self._check_release(index, entry, data)
        if entry["type"] != "attestation":
            return []
        events: list[dict[str, Any]] = []
        if self.reverify is not None:
            events.extend(self._check_verdict(index, entry))
        node = entry.get("node")
        if isinstance(node, str) and (self.watched is None or node in self.watched):
            events.extend(self._measurement_changes(index, node, entry, nodes))
        return events

    def _check_release(
        self, index: int, entry: dict[str, Any], data: bytes
    ) -> list[dict[str, Any]]:
        """A release of the watched model against its owner's expectations: one event per
        finding, each with the entry as evidence (its bytes kept in ``FILE.evidence/``)."""
        assert self.releases is not None
        findings = check_release(self.releases, entry)
        if not findings:
            return []
        path = evidence_dir(self.state_path) / f"release-{index}.json"
        _keep_bytes(path, data)
        return [
            self._entry_event(
                index,
                finding.kind,
                finding.detail,
                model=self.releases.model,
                **finding.extra,
                entry_sha256=hashlib.sha256(data).hexdigest(),
                entry=entry,
                evidence=str(path),
            )
            for finding in findings
        ]

    def _check_verdict(self, index: int, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """Re-verify an attestation entry's verdict offline; an event if it does not match."""
        from teelog.attestation.inputs import parse_json

        assert self.reverify is not None
        try:
            blobs = entry["blobs"]
            report = self.source.blob(blobs["report"])
            collateral = [self.source.blob(h) for h in blobs.get("collateral") or []]
            logged = entry["attestations"]
            if blobs.get("verdict"):
                logged = parse_json(self.source.blob(blobs["verdict"]))
            at = parse_rfc3339(entry["verified_at"])
        except (SourceError, KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"cannot re-verify entry {index}: {exc}"
            return [self._entry_event(index, "entry.unverifiable", detail, node=entry.get("node"))]
        recomputed = self.reverify(report, collateral, entry.get("nonce"), at)
        differences = verdict_differences(entry.get("status"), logged, recomputed)
        if not differences:
            return []
        return [
            self._entry_event(
                index,
                "entry.verdict_mismatch",
                "; ".join(differences),
                node=entry.get("node"),
                logged_status=entry.get("status"),
                recomputed=[_summary(v) for v in recomputed],
            )
        ]

    def _check_receipt(self, index: int, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """Re-check a receipt's signatures over its text (``entries.verdict``, as the
        collector did); an event if a logged signature check's status differs from the
        recomputed one. Signer vouching needs the node's attestations and is not re-checked."""
        from teelog.entries.verdict import receipt_signature_checks

        try:
            sigs = entry.get("signatures") or {}
            item = {
                "text": entry["text"],
                "request_sha256": entry["request_sha256"],
                "response_sha256": entry["response_sha256"],
                **{algo: sig for algo, sig in sigs.items() if isinstance(sig, dict)},
            }
            recomputed = receipt_signature_checks(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"cannot re-verify receipt {index}: {exc}"
            return [self._entry_event(index, "entry.unverifiable", detail, node=entry.get("node"))]
        logged = {c.get("name"): c.get("status") for c in entry.get("checks") or []}
        differences = []
        for check in recomputed:
            name = check["name"]
            if not name.startswith("receipt.signature."):
                continue  # only the signatures are facts of the entry alone
            # Entries name a signature check per algorithm, or once when there is one signature.
            was = logged.get(name, logged.get("receipt.signature"))
            if was is not None and was != check["status"]:
                differences.append(f"{name} logged {was!r}, recomputed {check['status']!r}")
        if not differences:
            return []
        return [
            self._entry_event(
                index, "entry.verdict_mismatch", "; ".join(differences), node=entry.get("node")
            )
        ]

    def _measurement_changes(
        self, index: int, node: str, entry: dict[str, Any], nodes: dict[str, NodeView]
    ) -> list[dict[str, Any]]:
        """Changes of the node's measurements since its previous attestation, attestations paired
        by the entry format's one rule (``entries.changes.labelled``)."""
        from teelog.attestation import Measurements, diff_measurements

        current: dict[str, dict[str, Any]] = {}
        for label, att in labelled(attestations_of(entry)).items():
            if isinstance(att.get("measurements"), dict):
                current[label] = sanitised(att["measurements"])
        if not current:
            return []  # nothing measured (an unreadable report): nothing to compare
        previous = nodes.get(node)
        nodes[node] = NodeView(index, current)
        if previous is None:
            return []
        changes = []
        for key in sorted(previous.measurements.keys() | current.keys()):
            old, new = previous.measurements.get(key), current.get(key)
            if old is None or new is None:
                change = {"field": key, "old": old is not None, "new": new is not None}
                changes.append({"attestation": key, "changes": [change]})
                continue
            diff = diff_measurements(Measurements.from_json(old), Measurements.from_json(new))
            if diff:
                changes.append({"attestation": key, "changes": [c.to_json() for c in diff]})
        if not changes:
            return []
        fields = ", ".join(c["field"] for item in changes for c in item["changes"])
        return [
            self._entry_event(
                index,
                "node.measurements_changed",
                f"{node}: {fields} changed since entry {previous.index}",
                node=node,
                previous_index=previous.index,
                changes=changes,
            )
        ]

    # --- events ---------------------------------------------------------------------------------

    def _entry_event(self, index: int, kind: str, detail: str, **extra: Any) -> dict[str, Any]:
        return {"id": f"{kind}:{index}", "type": kind, "index": index, "detail": detail, **extra}

    def _invalid_checkpoint(self, note: str, why: str) -> dict[str, Any]:
        digest = hashlib.sha256(note.encode()).hexdigest()
        path = evidence_dir(self.state_path) / f"invalid-{digest[:16]}"
        _keep(path / "served.checkpoint", note)
        return {
            "id": f"checkpoint.invalid:{digest}",
            "type": "checkpoint.invalid",
            "detail": why,
            "evidence": str(path),
        }

    def _inconsistency(self, cp: Checkpoint, kind: str, why: str) -> dict[str, Any]:
        """The alert for a checkpoint that contradicts the verified one; both kept as evidence."""
        verified = self.state.audit
        digest = hashlib.sha256((verified.checkpoint + "\0" + cp.note).encode()).hexdigest()
        path = evidence_dir(self.state_path) / f"inconsistent-{digest[:16]}"
        if verified.checkpoint:
            _keep(path / "verified.checkpoint", verified.checkpoint)
        _keep(path / "conflicting.checkpoint", cp.note)
        return {
            "id": f"log.inconsistent:{digest}",
            "type": "log.inconsistent",
            "kind": kind,
            "detail": why,
            "verified": {"size": verified.size, "root": _b64(verified.root)},
            "conflicting": {"size": cp.size, "root": _b64(cp.root)},
            "evidence": str(path),
        }

    def _split_view(self, split: SplitView) -> dict[str, Any]:
        """A witness saw a checkpoint inconsistent with the verified one; both kept."""
        verified = self.state.audit
        digest = hashlib.sha256((verified.checkpoint + "\0" + split.witness_note).encode())
        path = evidence_dir(self.state_path) / f"split-view-{digest.hexdigest()[:16]}"
        _keep(path / "verified.checkpoint", verified.checkpoint)
        _keep(path / f"witness-{split.witness}.checkpoint", split.witness_note)
        return {
            "id": f"log.split_view:{digest.hexdigest()}",
            "type": "log.split_view",
            "witness": split.witness,
            "detail": split.why,
            "verified": {"size": verified.size, "root": _b64(verified.root)},
            "evidence": str(path),
        }

    def _raise(self, result: PollResult, event: dict[str, Any]) -> None:
        """Record an event raised outside a commit (checkpoint problems), then save."""
        if self._record(result, event):
            save_state(self.state_path, self.state)

    def _record(self, result: PollResult, event: dict[str, Any]) -> bool:
        """Queue ``event`` as an alert unless it was raised before; True if queued."""
        if event["id"] in self.state.alerted:
            return False
        now = rfc3339(datetime.now(UTC))
        alert = {"log": self.key.name, "url": self.source.url, "time": now, **event}
        self.state.alerted.append(event["id"])
        self.state.pending.append(alert)
        result.alerts.append(alert)
        logger.warning("alert %s: %s", event["type"], event["detail"])
        return True

    def _deliver(self, result: PollResult) -> None:
        """Send the pending alerts in order; stop at the first the sink refuses."""
        while self.state.pending:
            alert = self.state.pending[0]
            try:
                self.sink.deliver(alert)
            except DeliveryError as exc:
                logger.error("alert %s not delivered, will retry: %s", alert["id"], exc)
                break
            self.state.pending.pop(0)
            save_state(self.state_path, self.state)
            result.delivered += 1
        result.undelivered = len(self.state.pending)

    # --- the loop -------------------------------------------------------------------------------

    def run(self, interval: float, *, once: bool = False) -> int:
        """Poll every ``interval`` seconds (once with ``once``) and return the exit status of
        the last poll (``teelog monitor --help``): 0 when the log verified and nothing was alerted,
        1 when the poll raised or delivered an alert (a fork, a rollback, a bad checkpoint, a
        verdict mismatch, a measurement change, a release outside the owner's expectations), an
        alert is still undelivered, or the log could not be read."""
        while True:
            try:
                result = self.poll()
                logger.info(
                    "verified size %d (%d new entries, %d alerts, %d release denials)",
                    result.size,
                    result.entries_read,
                    len(result.alerts),
                    result.denials,
                )
                found = result.alerts or result.delivered or result.undelivered
                status = EXIT_FOUND if found else EXIT_OK
            except SourceError as exc:
                logger.error("poll failed: %s", exc)
                status = EXIT_FOUND
            if once:
                return status
            time.sleep(interval)


def verdict_differences(
    logged_status: Any, logged: list[dict[str, Any]], recomputed: list[dict[str, Any]]
) -> list[str]:
    """How a recomputed verdict differs from the logged one (empty: they agree).

    Compared per attestation, in order: role, model, signing address (case-insensitive),
    status and measurements; and the entry's overall status (the worst of them).
    """
    out = []
    want_status = worst_status(v.get("status", "unverifiable") for v in recomputed)
    if logged_status != want_status:
        out.append(f"status logged {logged_status!r}, recomputed {want_status!r}")
    if len(logged) != len(recomputed):
        out.append(f"{len(logged)} attestations logged, {len(recomputed)} recomputed")
    for i, (a, b) in enumerate(zip(logged, recomputed, strict=False)):
        for key in _COMPARED:
            x, y = a.get(key), b.get(key)
            if key == "signing_address" and isinstance(x, str) and isinstance(y, str):
                x, y = x.lower(), y.lower()
            if x != y:
                out.append(f"attestation {i}: {key} logged {_short(x)}, recomputed {_short(y)}")
    return out


def _summary(verdict: dict[str, Any]) -> dict[str, Any]:
    return {k: verdict.get(k) for k in ("role", "model", "signing_address", "status")}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:119] + "…"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _keep(path: Path, text: str) -> None:
    """Write one evidence file durably (never overwritten with other content)."""
    _keep_bytes(path, text.encode())


def _keep_bytes(path: Path, data: bytes) -> None:
    """Write one evidence file of raw bytes durably (never overwritten with other content)."""
    if path.exists() and path.read_bytes() == data:
        return
    write_durable(path, data)
