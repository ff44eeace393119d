"""``teelog monitor`` against logs served over loopback HTTP in the C2SP tlog-tiles layout.

The served logs are built with the log's own tile and bundle builders and signed with its
signer; a fork is two logs under the same key that diverge. Attestation entries are built with
the collector's entry builder; the re-verification tests use the real NEAR AI bundle and its
archived Intel collateral at the fixture's pinned time (tests/data/tdx/README.md).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from teelog.attestation import Measurements
from teelog.entries.attestation import attestation_entry, encode_attestation
from teelog.entries.encoding import canonical
from teelog.log.checkpoint import Checkpoint
from teelog.log.merkle import leaf_hash
from teelog.log.note import Ed25519Signer
from teelog.log.served import HttpLog
from teelog.log.tiles import BundleBuilder, TileBuilder, encode_bundle
from teelog.monitor.alerts import DeliveryError, ExecSink, WebhookSink
from teelog.monitor.follow import Monitor, MonitorError
from teelog.monitor.state import StateError, evidence_dir, load_state

REPO = Path(__file__).resolve().parents[2]
NEAR_BUNDLE = REPO / "tests/data/gpu/nearai-cloud-gpt-oss-120b-2026-04/attestation_report.json"
NEAR_COLLATERAL = REPO / "tests/data/tdx/dcapqvl_tdx_v5.collateral.json"
NEAR_MODEL_AT = datetime.fromtimestamp(1773200000, UTC)  # model quote UpToDate (README)
ORIGIN = "monitor.test/teelog"


class ServedLog:
    """A log's tlog-tiles files and blobs in memory, appended batch by batch, each batch signed."""

    def __init__(self, signer: Ed25519Signer) -> None:
        self.signer = signer
        self.files: dict[str, bytes] = {}
        self.tiles = TileBuilder()
        self.bundles = BundleBuilder()
        self.entries: list[bytes] = []

    def copy(self) -> ServedLog:
        other = ServedLog(self.signer)
        other.files = dict(self.files)
        other.tiles = TileBuilder(self.tiles.size, dict(enumerate(self.tiles.partials)))
        other.bundles = BundleBuilder(self.bundles.size, self.bundles.partial)
        other.entries = list(self.entries)
        return other

    def put_blob(self, data: bytes) -> str:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        self.files[f"blob/{digest}"] = data
        return digest

    def append(self, *entries: bytes) -> None:
        for write in self.tiles.append([leaf_hash(e) for e in entries]):
            self.files[write.path] = write.data
        for write in self.bundles.append(list(entries)):
            self.files[write.path] = write.data
        self.entries.extend(entries)
        cp = Checkpoint(ORIGIN, self.tiles.size, self.tiles.root()).sign(self.signer)
        self.files["checkpoint"] = cp.note.encode()


class LogServer:
    """Serves one ServedLog (switchable) under /log/ on 127.0.0.1; records webhook posts."""

    def __init__(self) -> None:
        self.log: ServedLog | None = None
        self.hooks: list[dict[str, Any]] = []
        self.hook_status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.removeprefix("/log/")
                data = server.log.files.get(path) if server.log else None
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if server.hook_status == 200:
                    server.hooks.append(json.loads(body))
                self.send_response(server.hook_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[LogServer]:
    s = LogServer()
    yield s
    s.close()


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


def measurements(**changes: Any) -> dict[str, Any]:
    base = Measurements(
        mrtd="aa" * 48,
        rtmr0="00" * 48,
        rtmr1="01" * 48,
        rtmr2="02" * 48,
        rtmr3="03" * 48,
        compose_hash="cc" * 32,
        tcb_status="UpToDate",
    )
    return {**base.to_json(), **changes}


def synthetic_attestation(log: ServedLog, node: str, meas: dict[str, Any] | None) -> bytes:
    """An attestation entry with given (not verified) measurements: for --no-reverify runs."""
    verdict = {
        "role": "model",
        "model": "m",
        "signing_address": "0x" + "11" * 20,
        "signing_algo": "ecdsa",
        "status": "verified",
        "checks": [],
        "measurements": meas,
    }
    entry = attestation_entry(
        node=node,
        url=None,
        format="vllm-proxy",
        source="poll",
        observed_at=NEAR_MODEL_AT,
        verified_at=NEAR_MODEL_AT,
        nonce=None,
        attestations=[verdict],
        report_blob=log.put_blob(b"{}"),
        collateral_blobs=[],
    )
    return encode_attestation(entry, log.put_blob)


def receipt(seq: int) -> bytes:
    return canonical({"type": "receipt", "v": 1, "node": "n1", "seq": seq, "text": "x"})


class Sink:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.fail = False

    def deliver(self, alert: dict[str, Any]) -> None:
        if self.fail:
            raise DeliveryError("sink down")
        self.alerts.append(alert)


def monitor(server: LogServer, signer: Ed25519Signer, state: Path, sink, **kw) -> Monitor:
    kw.setdefault("reverify", None)
    return Monitor(HttpLog(server.url + "/log/"), signer.vkey, state, sink, **kw)


def types(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["type"] for a in alerts]


# --- following a log ------------------------------------------------------------------------------


def test_follows_a_growing_log_reading_every_entry_across_bundles(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(*[receipt(i) for i in range(300)])
    server.log = log
    sink = Sink()
    mon = monitor(server, signer, tmp_path / "state.json", sink)
    first = mon.poll()
    assert (first.size, first.entries_read, first.alerts) == (300, 300, [])
    log.append(*[receipt(i) for i in range(300, 520)])
    second = mon.poll()
    assert (second.size, second.entries_read) == (520, 220)
    again = mon.poll()
    assert (again.size, again.entries_read) == (520, 0)
    saved = load_state(tmp_path / "state.json", vkey=signer.vkey, origin=ORIGIN)
    assert saved.size == 520 and sink.alerts == []


def test_forked_log_alerts_once_keeps_both_checkpoints_and_never_advances(server, signer, tmp_path):
    honest = ServedLog(signer)
    honest.append(*[receipt(i) for i in range(5)])
    fork = honest.copy()
    honest.append(receipt(5), receipt(6))
    fork.append(receipt(1005), receipt(1006), receipt(1007))  # same key, diverges after 5
    server.log = honest
    sink = Sink()
    state = tmp_path / "state.json"
    assert monitor(server, signer, state, sink).poll().size == 7

    server.log = fork
    mon = monitor(server, signer, state, sink)
    result = mon.poll()
    assert types(sink.alerts) == ["log.inconsistent"]
    alert = sink.alerts[0]
    assert alert["kind"] == "fork" and result.size == 7
    assert alert["verified"]["size"] == 7 and alert["conflicting"]["size"] == 8
    evidence = Path(alert["evidence"])
    assert evidence.parent == evidence_dir(state)
    assert (evidence / "verified.checkpoint").read_text() == honest.files["checkpoint"].decode()
    assert (evidence / "conflicting.checkpoint").read_text() == fork.files["checkpoint"].decode()

    assert mon.poll().alerts == []  # same fork seen again: no second alert
    restarted = monitor(server, signer, state, sink)
    assert restarted.poll().alerts == [] and restarted.state.size == 7
    assert types(sink.alerts) == ["log.inconsistent"]


def test_same_size_with_another_root_is_a_fork(server, signer, tmp_path):
    a = ServedLog(signer)
    a.append(receipt(0), receipt(1))
    b = ServedLog(signer)
    b.append(receipt(0), receipt(2))
    server.log, sink = a, Sink()
    mon = monitor(server, signer, tmp_path / "s.json", sink)
    mon.poll()
    server.log = b
    mon.poll()
    assert [(x["type"], x["kind"]) for x in sink.alerts] == [("log.inconsistent", "fork")]


def test_shrinking_log_is_a_rollback(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(receipt(0))
    earlier = log.copy()
    log.append(receipt(1))
    server.log, sink = log, Sink()
    mon = monitor(server, signer, tmp_path / "s.json", sink)
    mon.poll()
    server.log = earlier
    mon.poll()
    assert [(x["type"], x["kind"]) for x in sink.alerts] == [("log.inconsistent", "rollback")]


def test_entry_bundle_that_does_not_match_the_tree_is_caught(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(receipt(0), receipt(1))
    mon = monitor(server, signer, tmp_path / "s.json", Sink())
    server.log = log
    mon.poll()
    log.append(receipt(2), receipt(3))
    path = "tile/entries/000.p/4"
    log.files[path] = log.files[path].replace(b'"seq":3', b'"seq":9')  # tiles and root untouched
    result = mon.poll()
    assert types(result.alerts) == ["log.inconsistent"]
    assert result.alerts[0]["kind"] == "bad-entries" and result.size == 2


def test_bundles_and_tiles_that_agree_but_not_with_the_checkpoint_are_caught(
    server, signer, tmp_path
):
    log = ServedLog(signer)
    log.append(receipt(0), receipt(1))
    mon = monitor(server, signer, tmp_path / "s.json", Sink())
    server.log = log
    mon.poll()
    log.append(receipt(2), receipt(3))
    forged = [*log.entries[:3], receipt(9)]
    log.files["tile/entries/000.p/4"] = encode_bundle(forged)
    log.files["tile/0/000.p/4"] = b"".join(leaf_hash(e) for e in forged)
    result = mon.poll()
    assert [(a["type"], a["kind"]) for a in result.alerts] == [("log.inconsistent", "bad-tiles")]
    assert result.size == 2


def test_checkpoint_signed_by_another_key_is_rejected_once(server, signer, tmp_path):
    impostor = ServedLog(Ed25519Signer.generate(ORIGIN))
    impostor.append(receipt(0))
    server.log, sink = impostor, Sink()
    mon = monitor(server, signer, tmp_path / "s.json", sink)
    assert mon.poll().size == 0
    mon.poll()
    assert types(sink.alerts) == ["checkpoint.invalid"]
    assert (
        "not signed by the log key" in sink.alerts[0]["detail"]
        or "trusted key" in sink.alerts[0]["detail"]
    )


def test_unreadable_log_records_nothing(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(receipt(0), receipt(1))
    del log.files["tile/entries/000.p/2"]
    server.log = log
    mon = monitor(server, signer, tmp_path / "s.json", Sink())
    assert mon.run(1.0, once=True) == 1
    assert mon.state.size == 0 and not (tmp_path / "s.json").exists()


def test_state_of_another_key_is_refused(server, signer, tmp_path):
    server.log = ServedLog(signer)
    server.log.append(receipt(0))
    monitor(server, signer, tmp_path / "s.json", Sink()).poll()
    other = Ed25519Signer.generate(ORIGIN)
    with pytest.raises(MonitorError, match="another key"):
        monitor(server, other, tmp_path / "s.json", Sink())
    damaged = json.loads((tmp_path / "s.json").read_text())
    damaged["right_edge"] = [base64.b64encode(b"\0" * 32).decode()]
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    with pytest.raises(MonitorError, match="does not make the saved root"):
        monitor(server, signer, tmp_path / "damaged.json", Sink())
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StateError):
        load_state(tmp_path / "bad.json", vkey=signer.vkey, origin=ORIGIN)


# --- measurement changes ------------------------------------------------------------------------


def test_measurement_change_of_a_watched_node_alerts_once_even_after_restart(
    server, signer, tmp_path
):
    log = ServedLog(signer)
    log.append(synthetic_attestation(log, "n1", measurements()))
    log.append(synthetic_attestation(log, "n2", measurements()))
    log.append(synthetic_attestation(log, "n1", measurements()))  # unchanged
    server.log, sink, state = log, Sink(), tmp_path / "s.json"
    monitor(server, signer, state, sink, nodes=["n1"]).poll()
    assert sink.alerts == []

    log.append(synthetic_attestation(log, "n2", measurements(rtmr3="ff" * 48)))  # not watched
    log.append(synthetic_attestation(log, "n1", measurements(compose_hash="dd" * 32)))
    monitor(server, signer, state, sink, nodes=["n1"]).poll()
    assert types(sink.alerts) == ["node.measurements_changed"]
    alert = sink.alerts[0]
    assert alert["node"] == "n1" and alert["index"] == 4 and alert["previous_index"] == 2
    assert alert["changes"][0]["changes"] == [
        {"field": "compose_hash", "old": "cc" * 32, "new": "dd" * 32}
    ]

    restarted = monitor(server, signer, state, sink, nodes=["n1"])
    assert restarted.poll().alerts == []
    log.append(synthetic_attestation(log, "n1", measurements(compose_hash="dd" * 32)))
    assert restarted.poll().alerts == []  # the new value is now the baseline
    assert types(sink.alerts) == ["node.measurements_changed"]


def test_every_node_is_watched_by_default_and_unmeasured_reports_are_skipped(
    server, signer, tmp_path
):
    log = ServedLog(signer)
    log.append(synthetic_attestation(log, "n2", measurements()))
    log.append(synthetic_attestation(log, "n2", None))  # unreadable report: nothing measured
    log.append(synthetic_attestation(log, "n2", measurements(tcb_status="OutOfDate")))
    server.log, sink = log, Sink()
    monitor(server, signer, tmp_path / "s.json", sink).poll()
    assert types(sink.alerts) == ["node.measurements_changed"]
    assert sink.alerts[0]["previous_index"] == 0


# --- re-verification of verdicts (real NEAR AI bundle, archived collateral) ----------------------


def near_entry(log: ServedLog, tamper=None) -> bytes:
    from teelog.attestation.collateral import Collateral, load_collateral
    from teelog.collector.verification import report_verifier

    raw = NEAR_BUNDLE.read_bytes()
    verify = report_verifier(Collateral([load_collateral(NEAR_COLLATERAL.read_bytes())]))
    verification = verify(json.loads(raw), None, NEAR_MODEL_AT)
    attestations = verification.attestations
    if tamper:
        tamper(attestations)
    entry = attestation_entry(
        node="near",
        url=None,
        format="near-gateway",
        source="import",
        observed_at=NEAR_MODEL_AT,
        verified_at=NEAR_MODEL_AT,
        nonce=None,
        attestations=attestations,
        report_blob=log.put_blob(raw),
        collateral_blobs=[log.put_blob(d) for _, d in sorted(verification.collateral_used.items())],
    )
    return encode_attestation(entry, log.put_blob)


def _claim_verified(attestations):
    attestations[0]["status"] = "verified"  # the gateway's quote is unverifiable at this time


def _swap_rtmr3(attestations):
    attestations[-1]["measurements"]["rtmr3"] = "ee" * 48


def test_genuine_verdict_re_verifies_offline_without_alert(server, signer, tmp_path):
    from teelog.monitor.follow import reverify_with_teelog

    log = ServedLog(signer)
    log.append(near_entry(log))
    server.log, sink = log, Sink()
    result = monitor(
        server, signer, tmp_path / "s.json", sink, reverify=reverify_with_teelog
    ).poll()
    assert result.size == 1 and sink.alerts == []


@pytest.mark.parametrize(
    ("tamper", "says"),
    [(_claim_verified, "status logged"), (_swap_rtmr3, "measurements logged")],
)
def test_logged_verdict_that_re_verification_contradicts_alerts(
    server, signer, tmp_path, tamper, says
):
    from teelog.monitor.follow import reverify_with_teelog

    log = ServedLog(signer)
    log.append(near_entry(log), near_entry(log, tamper))
    server.log, sink = log, Sink()
    monitor(server, signer, tmp_path / "s.json", sink, reverify=reverify_with_teelog).poll()
    mismatches = [a for a in sink.alerts if a["type"] == "entry.verdict_mismatch"]
    assert [a["index"] for a in mismatches] == [1]
    assert says in mismatches[0]["detail"]


def test_missing_report_blob_is_reported_as_unverifiable(server, signer, tmp_path):
    from teelog.monitor.follow import reverify_with_teelog

    log = ServedLog(signer)
    log.append(near_entry(log))
    for path in [p for p in log.files if p.startswith("blob/")]:
        del log.files[path]
    server.log, sink = log, Sink()
    monitor(server, signer, tmp_path / "s.json", sink, reverify=reverify_with_teelog).poll()
    assert types(sink.alerts) == ["entry.unverifiable"]


def signed_receipt(seq: int, *, forged: bool = False) -> bytes:
    """A receipt entry as the collector writes it; ``forged``: signed by another key, but
    logged with the checks of a genuine one."""
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from teelog.entries.receipt import receipt_entry
    from teelog.entries.verdict import receipt_signature_checks

    node_key = Account.from_key(b"\x11" * 32)
    text = f"{seq:064x}:" + "b2" * 32
    signer_key = Account.from_key(b"\x22" * 32) if forged else node_key
    signature = "0x" + signer_key.sign_message(encode_defunct(text=text)).signature.hex()
    item = {
        "seq": seq,
        "chat_id": f"chatcmpl-{seq}",
        "model": "m",
        "text": text,
        "request_sha256": text[:64],
        "response_sha256": text[65:],
        "signed_at": "2026-03-11T03:33:20Z",
        "ecdsa": {"signing_address": node_key.address, "signature": signature},
    }
    genuine = dict(item, ecdsa={**item["ecdsa"]})
    if forged:
        genuine["ecdsa"]["signature"] = (
            "0x" + node_key.sign_message(encode_defunct(text=text)).signature.hex()
        )
    checks = receipt_signature_checks(genuine)
    entry = receipt_entry(
        node="n1",
        node_instance="j",
        item=item,
        observed_at=NEAR_MODEL_AT,
        attestation_index=None,
        status="verified",
        checks=checks,
    )
    return canonical(entry)


def test_receipt_signatures_are_re_verified(server, signer, tmp_path):
    from teelog.monitor.follow import reverify_with_teelog

    log = ServedLog(signer)
    log.append(signed_receipt(0), signed_receipt(1, forged=True), signed_receipt(2))
    server.log, sink = log, Sink()
    monitor(server, signer, tmp_path / "s.json", sink, reverify=reverify_with_teelog).poll()
    assert [(a["type"], a["index"]) for a in sink.alerts] == [("entry.verdict_mismatch", 1)]
    assert "receipt.signature.ecdsa logged 'pass', recomputed 'fail'" in sink.alerts[0]["detail"]


# --- delivery -------------------------------------------------------------------------------------


def test_undelivered_alert_is_retried_and_then_delivered_once(server, signer, tmp_path):
    a = ServedLog(signer)
    a.append(receipt(0))
    b = ServedLog(signer)
    b.append(receipt(1))
    server.log, sink = a, Sink()
    state = tmp_path / "s.json"
    monitor(server, signer, state, sink).poll()
    server.log, sink.fail = b, True
    first = monitor(server, signer, state, sink).poll()
    assert (first.undelivered, sink.alerts) == (1, [])
    sink.fail = False
    second = monitor(server, signer, state, sink).poll()  # restarted: the alert is still pending
    assert second.delivered == 1 and types(sink.alerts) == ["log.inconsistent"]
    assert monitor(server, signer, state, sink).poll().delivered == 0


def test_pending_alert_is_delivered_even_while_the_log_is_unreachable(server, signer, tmp_path):
    a = ServedLog(signer)
    a.append(receipt(0))
    b = ServedLog(signer)
    b.append(receipt(1))
    server.log, sink, state = a, Sink(), tmp_path / "s.json"
    monitor(server, signer, state, sink).poll()
    server.log, sink.fail = b, True
    monitor(server, signer, state, sink).poll()
    server.log, sink.fail = None, False  # every GET is a 404 now
    mon = monitor(server, signer, state, sink)
    assert mon.run(1.0, once=True) == 1
    assert types(sink.alerts) == ["log.inconsistent"] and mon.state.pending == []


def test_webhook_sink_posts_json_and_fails_on_error_status(server):
    hook = WebhookSink(server.url + "/hook")
    hook.deliver({"id": "x", "type": "t"})
    assert server.hooks == [{"id": "x", "type": "t"}]
    server.hook_status = 500
    with pytest.raises(DeliveryError, match="HTTP 500"):
        hook.deliver({"id": "y"})


def test_exec_sink_passes_the_alert_on_stdin(tmp_path):
    out = tmp_path / "alert.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    ExecSink(f"{sys.executable} -c {json.dumps(script)}").deliver({"id": "x"})
    assert json.loads(out.read_text()) == {"id": "x"}
    with pytest.raises(DeliveryError, match="exited 3"):
        ExecSink(f"{sys.executable} -c 'raise SystemExit(3)'").deliver({"id": "x"})


def main(argv: list[str]) -> int:
    """``teelog <argv>`` with the monitor's subcommand registered as teelog.cli does."""
    import argparse

    from teelog.monitor import cli as monitor_cli

    parser = argparse.ArgumentParser(prog="teelog")
    monitor_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_once_follows_the_log_and_alerts_to_a_webhook(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(synthetic_attestation(log, "n1", measurements()))
    log.append(synthetic_attestation(log, "n1", measurements(mrtd="bb" * 48)))
    server.log = log
    vkey_file = tmp_path / "log.vkey"
    vkey_file.write_text(signer.vkey + "\n")
    argv = [
        "monitor",
        "--url",
        server.url + "/log/",
        "--vkey",
        f"@{vkey_file}",
        "--state",
        str(tmp_path / "s.json"),
        "--webhook",
        server.url + "/hook",
        "--no-reverify",
        "--once",
    ]
    assert main(argv) == 1  # it sent an alert (issue 9 §6: --once says so in its status)
    assert [h["type"] for h in server.hooks] == ["node.measurements_changed"]
    assert main(argv) == 0
    assert len(server.hooks) == 1
    assert main([*argv[:3], "--vkey", "not-a-key", *argv[5:]]) == 2


# --- one state format -----------------------------------------------------------------------------


def test_state_file_is_the_audit_core_state_that_log_verify_continues_from(
    server, signer, tmp_path
):
    from teelog.log.audit import AuditState, audit
    from teelog.log.note import parse_vkey

    log = ServedLog(signer)
    log.append(*[receipt(i) for i in range(3)])
    server.log, state = log, tmp_path / "s.json"
    monitor(server, signer, state, Sink()).poll()
    audited = AuditState.load(state)
    assert audited is not None and audited.size == 3
    assert set(audited.extra) == {"version", "vkey", "nodes", "alerted", "pending"}
    log.append(receipt(3))
    fetch = HttpLog(server.url + "/log/").get
    report, after = audit(fetch, parse_vkey(signer.vkey), audited)
    assert report.entries_checked == 1 and "consistency: size 3 -> 4 proven" in report.lines[-1]
    after.save(state)  # teelog log verify --state writes it back; the monitor goes on from it
    mon = monitor(server, signer, state, Sink())
    assert mon.state.size == 4 and mon.state.vkey == signer.vkey.strip()
    assert (mon.poll().size, mon.poll().entries_read) == (4, 0)


def as_version_1(state: Path, nodes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rewrite the monitor's state file as version 1 wrote it (``root_b64``, ``frontier_b64``,
    node baselines keyed ``role/model``); returns what was written."""
    now = json.loads(state.read_text())
    old = {
        "version": 1, "vkey": now["vkey"], "origin": now["origin"], "size": now["size"],
        "root_b64": now["root"], "checkpoint": now["checkpoint"],
        "frontier_b64": now["right_edge"], "alerted": [], "pending": [], "nodes": nodes or {},
    }
    state.write_text(json.dumps(old))
    return old


def test_version_1_state_file_is_still_read(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(*[receipt(i) for i in range(3)])
    server.log, state = log, tmp_path / "s.json"
    monitor(server, signer, state, Sink()).poll()
    old = as_version_1(state)
    log.append(receipt(3))
    result = monitor(server, signer, state, Sink()).poll()
    assert (result.size, result.entries_read, result.alerts) == (4, 1, [])
    assert json.loads(state.read_text())["version"] == 2
    old["frontier_b64"] = []
    state.write_text(json.dumps(old))
    with pytest.raises(MonitorError, match="a compact range of size 3 has 2 hashes"):
        monitor(server, signer, state, Sink())


def test_once_exits_1_when_it_finds_a_fork_and_0_when_the_log_only_grew(server, signer, tmp_path):
    honest = ServedLog(signer)
    honest.append(*[receipt(i) for i in range(3)])
    fork = honest.copy()
    honest.append(receipt(3))
    fork.append(receipt(103))
    server.log, state, sink = honest, tmp_path / "s.json", Sink()
    assert monitor(server, signer, state, sink).run(1.0, once=True) == 0
    honest.append(receipt(4))
    assert monitor(server, signer, state, sink).run(1.0, once=True) == 0
    server.log = fork
    assert monitor(server, signer, state, sink).run(1.0, once=True) == 1
    assert [(a["type"], a["kind"]) for a in sink.alerts] == [("log.inconsistent", "rollback")]
    fork.append(receipt(104), receipt(105))
    assert monitor(server, signer, state, sink).run(1.0, once=True) == 1
    assert [a.get("kind") for a in sink.alerts] == ["rollback", "fork"]
    # the same fork seen again raises nothing new and sends nothing: 0
    assert monitor(server, signer, state, sink).run(1.0, once=True) == 0


def test_cli_interval_takes_the_one_duration_syntax(server, signer, tmp_path, capsys):
    server.log = ServedLog(signer)
    server.log.append(receipt(0))
    base = ["monitor", "--url", server.url + "/log/", "--vkey", signer.vkey,
            "--state", str(tmp_path / "s.json"), "--no-reverify", "--once"]
    assert main([*base, "--interval", "5m"]) == 0
    with pytest.raises(SystemExit) as exc:
        main([*base, "--interval", "fast"])
    assert exc.value.code == 2
    assert 'expected a duration like "30s", got "fast"' in capsys.readouterr().err


def test_monitor_pairs_attestations_by_the_entry_format_rule_the_collector_alerts_on(
    server, signer, tmp_path
):
    """Two attestations of the same role and model are paired in order (``model[m]#2``), as
    ``entries.changes.compare_summaries`` pairs them; the monitor used to key them by role and
    model only, so the second one overwrote the first (whose changes went unseen)."""
    from teelog.entries.changes import compare_summaries, summary_of

    def double(second: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        one = json.loads(synthetic_attestation(log, "n1", measurements()))
        two = json.loads(synthetic_attestation(log, "n1", second))
        one["attestations"].append(two["attestations"][0])
        return canonical(one), one

    log = ServedLog(signer)
    first, old = double(measurements())
    second, new = double(measurements(mrtd="bb" * 48))
    log.append(first, second)
    server.log, sink = log, Sink()
    monitor(server, signer, tmp_path / "s.json", sink).poll()
    assert types(sink.alerts) == ["node.measurements_changed"]
    assert [c["attestation"] for c in sink.alerts[0]["changes"]] == ["model[m]#2"]
    collector_fields = [c.field for c in compare_summaries(summary_of(old), summary_of(new))]
    assert collector_fields == ["model[m]#2.mrtd"]


def test_version_1_node_baselines_are_read_under_the_new_labels(server, signer, tmp_path):
    log = ServedLog(signer)
    log.append(synthetic_attestation(log, "n1", measurements()))
    server.log, state, sink = log, tmp_path / "s.json", Sink()
    monitor(server, signer, state, sink).poll()
    as_version_1(state, {"n1": {"index": 0, "measurements": {"model/m": measurements()}}})
    log.append(synthetic_attestation(log, "n1", measurements()))
    assert monitor(server, signer, state, sink).poll().alerts == []  # same baseline, no change
    log.append(synthetic_attestation(log, "n1", measurements(rtmr3="ff" * 48)))
    assert types(monitor(server, signer, state, sink).poll().alerts) == [
        "node.measurements_changed"
    ]
