"""Polling real formats into the log: fresh nonces, verification at poll time, evidence blobs,
failures logged, health and backoff, and isolation from slow nodes."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from collector_fakes import (
    NEAR_MODEL_AT,
    PinnedClock,
    chutes_report_from_near,
    collector_config,
    entries_of,
    near_bundle_bytes,
    vllm_proxy_report_from_near,
)
from sqlmodel import Session, select
from teelog.collector import Collector
from teelog.collector.models import CollectorNode, CollectorSigner

PROVIDERS = [
    ("near-gateway", near_bundle_bytes(), {"gateway", "model"}),
    ("vllm-proxy", vllm_proxy_report_from_near(), {"model"}),
    ("redpill-chutes", chutes_report_from_near(), None),
]


def _node(url: str, name: str = "n1", **kw):
    return {"name": name, "url": url, "format": "auto", "interval": "5s", **kw}


@pytest.mark.parametrize(("fmt", "body", "roles"), PROVIDERS, ids=[p[0] for p in PROVIDERS])
def test_recorded_provider_report_is_logged_and_its_stale_nonce_fails(
    fake_node, data_dir, fmt, body, roles
):
    node = fake_node()
    node.serve("/v1/attestation/report", body)
    config = collector_config(data_dir, [_node(node.url, model="openai/gpt-oss-120b")])
    with Collector(config, clock=PinnedClock(NEAR_MODEL_AT)) as collector:
        summary = collector.run_once()
        (outcome,) = summary.attestations
        assert outcome.error is None
        entry = json.loads(collector.log.entry(outcome.index))
        blobs = collector.log.blobs

    sent = node.report_requests()[-1]["nonce"]
    assert len(sent) == 64 and sent != "deadbeef" + "0" * 55 + "1"
    assert entry["type"] == "attestation" and entry["v"] == 1
    assert (entry["node"], entry["url"], entry["format"], entry["source"]) == (
        "n1", node.url, fmt, "poll",
    )
    assert entry["nonce"] == sent
    assert entry["observed_at"] == entry["verified_at"] == "2026-03-11T03:33:20Z"
    # The recorded bundle answers the nonce it was captured with, not ours: the verdict says so.
    assert entry["status"] == "failed"
    for att in entry["attestations"]:
        binding = {c["name"]: c for c in att["checks"] if c["name"].startswith("binding.")}
        assert binding["binding.nonce"]["status"] == "fail"
        assert sent in binding["binding.nonce"]["detail"]
    if roles is not None:
        assert {a["role"] for a in entry["attestations"]} == roles
    # The exact bytes served, and the collateral used, are in the blob store.
    assert blobs.get(entry["blobs"]["report"]) == body
    assert entry["blobs"]["report"] == hashlib.sha256(body).hexdigest()
    for digest in entry["blobs"]["collateral"]:
        assert hashlib.sha256(blobs.get(digest)).hexdigest() == digest


def test_verification_uses_the_poll_time_and_records_measurements(fake_node, data_dir):
    node = fake_node()
    node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
    config = collector_config(data_dir, [_node(node.url)])
    with Collector(config, clock=PinnedClock(NEAR_MODEL_AT)) as collector:
        index = collector.run_once().attestations[0].index
        (att,) = json.loads(collector.log.entry(index))["attestations"]
    checks = {c["name"]: c["status"] for c in att["checks"]}
    assert checks["tdx.quote"] == "pass"  # archived collateral is valid at the pinned time
    assert checks["tdx.tcb"] == "pass"
    m = att["measurements"]
    assert m["compose_hash"] == "242a62724303cc32f364da0fc92738706b0078e7587821b7ba3e75488223797b"
    assert m["tcb_status"] == "UpToDate"
    assert len(m["gpus"]) == 8 and m["gpus"][0]["driver_version"] == "570.172.08"


def test_every_poll_sends_a_fresh_nonce(fake_node, data_dir):
    node = fake_node()
    node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
    with Collector(collector_config(data_dir, [_node(node.url)])) as collector:
        collector.run_once()
        collector.run_once()
    nonces = [q["nonce"] for q in node.report_requests()]
    assert len(nonces) == 2 and nonces[0] != nonces[1]


def test_a_report_that_fails_verification_at_today_s_time_is_still_logged(fake_node, data_dir):
    node = fake_node()
    node.serve("/v1/attestation/report", near_bundle_bytes())
    with Collector(collector_config(data_dir, [_node(node.url)])) as collector:
        (outcome,) = collector.run_once().attestations
        entry = json.loads(collector.log.entry(outcome.index))
    assert entry["status"] == "failed"
    assert all(a["status"] == "failed" for a in entry["attestations"])


def test_an_unreadable_report_is_logged_with_the_reason(fake_node, data_dir):
    node = fake_node()
    node.serve(
        "/v1/attestation/report",
        json.dumps({"intel_quote": "zz-not-hex", "signing_address": "0x12"}).encode(),
    )
    with Collector(collector_config(data_dir, [_node(node.url)])) as collector:
        (outcome,) = collector.run_once().attestations
        entry = json.loads(collector.log.entry(outcome.index))
    assert outcome.error is None
    assert entry["status"] == "failed"
    failing = [c for a in entry["attestations"] for c in a["checks"] if c["status"] == "fail"]
    assert failing and all(c["detail"] for c in failing)


def _state(collector, name="n1") -> CollectorNode:
    with Session(collector.log.engine) as session:
        return session.get(CollectorNode, name)


def test_failures_are_recorded_as_health_and_backed_off(fake_node, data_dir):
    node = fake_node()
    node.serve("/v1/attestation/report", b"<html>oops</html>", status=502)
    clock = PinnedClock(NEAR_MODEL_AT)
    config = collector_config(data_dir, [_node(node.url, interval="10s")])
    with Collector(config, clock=clock) as collector:
        poller = collector.attestation_pollers["n1"]
        assert poller.poll().error.kind == "http"
        assert poller.poll(force=True).error.kind == "http"
        state = _state(collector)
        assert state.consecutive_failures == 2
        assert state.last_error_kind == "http" and "HTTP 502" in state.last_error
        assert state.last_success_at is None
        # Second failure: twice the interval (±10 % jitter) before the next attempt.
        wait = (state.next_attempt_at - clock()).total_seconds()
        assert 17 < wait < 22
        assert poller.poll().skipped
        assert len(node.report_requests()) == 2
        node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
        clock.advance(25)
        outcome = poller.poll()
        assert outcome.error is None and outcome.index == 0
        state = _state(collector)
        assert state.consecutive_failures == 0 and state.next_attempt_at is None
        assert state.last_success_at is not None
        assert state.last_error_kind == "http"  # the last error stays visible
        assert state.last_attestation_index == 0


def test_backoff_is_capped(fake_node, data_dir):
    config = collector_config(
        data_dir, [_node("http://127.0.0.1:9", interval="10s", max_backoff="30s", timeout="1s")]
    )
    clock = PinnedClock(NEAR_MODEL_AT)
    with Collector(config, clock=clock) as collector:
        for _ in range(6):
            assert collector.attestation_pollers["n1"].poll(force=True).error.kind == "connect"
        wait = (_state(collector).next_attempt_at - clock()).total_seconds()
    assert 26 < wait < 34


@pytest.mark.slow
def test_a_hanging_node_does_not_delay_the_others(fake_node, data_dir):
    good, hanging = fake_node(), fake_node()
    good.serve("/v1/attestation/report", vllm_proxy_report_from_near())
    hanging.routes["/v1/attestation/report"] = lambda *_: (time.sleep(5), (200, {}, b"{}"))[1]
    config = collector_config(
        data_dir,
        [
            _node(hanging.url, name="hanging", interval="0.2s", timeout="3s", receipts=False),
            _node(good.url, name="good", interval="0.2s", receipts=False),
        ],
    )
    collector = Collector(config, clock=PinnedClock(NEAR_MODEL_AT))
    try:
        collector.start()
        time.sleep(2.0)
    finally:
        collector.close()
    assert len(good.report_requests()) >= 5  # polled on schedule while the other hung
    assert len(hanging.report_requests()) == 1  # max_instances=1: no pile-up behind it
    assert len(entries_of(collector.log, "attestation")) >= 5


@pytest.mark.slow
def test_verification_in_worker_processes_gives_the_same_verdicts(fake_node, data_dir):
    node = fake_node()
    node.serve("/v1/attestation/report", vllm_proxy_report_from_near())
    nodes = [_node(node.url, receipts=False)]
    verdicts = []
    for processes in (0, 1):
        config = collector_config(data_dir, nodes, collector={"verify_processes": processes})
        with Collector(config, clock=PinnedClock(NEAR_MODEL_AT)) as collector:
            index = collector.run_once().attestations[0].index
            entry = json.loads(collector.log.entry(index))
        verdicts.append([
            (a["status"], [(c["name"], c["status"]) for c in a["checks"]], a["measurements"])
            for a in entry["attestations"]
        ])
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][0][0] == "failed"  # the stale nonce, as in the threads


def test_a_hostile_report_with_thousands_of_attestations_still_makes_a_bounded_entry(
    fake_node, data_dir
):
    items = [
        {"signing_address": f"0x{i:040x}", "intel_quote": f"{i:08x}" * 16,
         "model_name": "m" * 200}
        for i in range(3000)
    ]
    body = json.dumps({**items[0], "all_attestations": items}).encode()
    node = fake_node()
    node.serve("/v1/attestation/report", body)
    with Collector(collector_config(data_dir, [_node(node.url, receipts=False)])) as collector:
        (outcome,) = collector.run_once().attestations
        data = collector.log.entry(outcome.index)
        entry = json.loads(data)
        full = json.loads(collector.log.blobs.get(entry["blobs"]["verdict"]))
    assert outcome.error is None
    assert len(data) <= 65_535
    assert entry["status"] == "failed"
    assert 0 < len(entry["attestations"]) < len(full) == 3000


def test_two_attestations_naming_one_signer_are_recorded_once(fake_node, data_dir):
    items = [{"signing_address": "0x" + "AB" * 20, "intel_quote": q * 64} for q in ("00", "11")]
    node = fake_node()
    node.serve(
        "/v1/attestation/report", json.dumps({**items[0], "all_attestations": items}).encode()
    )
    with Collector(collector_config(data_dir, [_node(node.url, receipts=False)])) as collector:
        for _ in range(2):
            (outcome,) = collector.run_once().attestations
            assert outcome.error is None
        with Session(collector.log.engine) as session:
            (signer,) = session.exec(select(CollectorSigner)).all()
    assert signer.signing_address == "0x" + "ab" * 20
    assert (signer.named_index, signer.named_status, signer.log_index) == (1, "failed", None)
