"""dstack event logs: replay against real quotes, runtime digests, compose and info bindings."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from attestation_data import REPORTS, TDX, near_bundle, quote_bytes
from teelog.attestation.errors import EventLogError
from teelog.attestation.eventlog import (
    RUNTIME_EVENT_TYPE,
    compose_check,
    info_check,
    parse_event_log,
    rtmr_check,
    runtime_event_digest,
)
from teelog.attestation.quote import decode_quote_bytes, parse_quote


def _load(name):
    return json.loads((REPORTS / name).read_text())


def real_logs():
    """(name, event log JSON, TD report) of every real log with its quote."""
    bundle = near_bundle()
    gw, model = bundle["gateway_attestation"], bundle["model_attestations"][0]
    sample = _load("vllmproxy_sample_dstack_getquote.json")
    mpc = _load("nearmpc_public_data_2026-08.json")["tee_participant_info"]["Dstack"]
    out = [
        ("near-gateway", gw["event_log"], gw["intel_quote"]),
        ("near-model", model["event_log"], model["intel_quote"]),
        ("vllmproxy-sample", sample["event_log"], sample["quote"]),
        (
            "nearmpc-2026",
            mpc["tcb_info"]["event_log"],
            (TDX / "nearmpc_2026_tdx_v4.quote.bin").read_bytes(),
        ),
        (
            "simulator",
            (REPORTS / "dstack_simulator_v0.5.3" / "eventlog.json").read_text(),
            (REPORTS / "dstack_simulator_v0.5.3" / "quote.hex").read_text(),
        ),
    ]
    for name in (
        "dstack_verifier_fixture_quote-report.json",
        "dstack_verifier_fixture_tdx-lite-getquote.json",
    ):
        doc = _load(name)
        out.append((name, doc["event_log"], doc["quote"]))
    return [(n, log, parse_quote(decode_quote_bytes(q)).report) for n, log, q in out]


@pytest.mark.parametrize(
    ("name", "log", "report"), real_logs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_real_log_replays_to_its_quote(name, log, report):
    parsed = parse_event_log(log)
    assert parsed.replay() == report.rtmrs
    check = rtmr_check(parsed, report)
    assert check.status == "pass", check.detail


def test_stripped_runtime_digests_are_recomputed():
    doc = _load("dstack_verifier_fixture_tdx-lite-getquote.json")
    log = parse_event_log(doc["event_log"])
    assert all(e.digest is None for e in log.runtime_events())
    assert log.replay()[3] == parse_quote(decode_quote_bytes(doc["quote"])).report.rtmrs[3]


def test_runtime_digest_v1_matches_the_logged_digests():
    log = parse_event_log(near_bundle()["model_attestations"][0]["event_log"])
    for event in log.runtime_events():
        assert event.event_type == RUNTIME_EVENT_TYPE
        expected = hashlib.sha384(
            RUNTIME_EVENT_TYPE.to_bytes(4, "little")
            + b":"
            + event.name.encode()
            + b":"
            + event.payload
        ).digest()
        assert runtime_event_digest(event.name, event.payload) == expected == event.digest


def test_runtime_digest_v2_is_sha384_of_the_jcs_document():
    doc = {"name": "compose-hash", "payload": "abcd", "type": RUNTIME_EVENT_TYPE}
    assert (
        runtime_event_digest("compose-hash", b"\xab\xcd", 2)
        == hashlib.sha384(rfc8785.dumps(doc)).digest()
    )


def test_tampered_payload_fails_rtmr3_even_with_a_matching_digest_field():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    events = json.loads(json.dumps(model["event_log"]))
    target = next(e for e in events if e["event"] == "compose-hash")
    forged = "11" * 32
    target["event_payload"] = forged
    # An attacker also rewrites the digest field to match the forged payload.
    target["digest"] = runtime_event_digest("compose-hash", bytes.fromhex(forged)).hex()
    check = rtmr_check(parse_event_log(events), report)
    assert check.status == "fail" and "RTMR3" in check.detail


def test_tampered_payload_with_the_old_digest_is_named():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    events = json.loads(json.dumps(model["event_log"]))
    next(e for e in events if e["event"] == "app-id")["event_payload"] = "00" * 20
    check = rtmr_check(parse_event_log(events), report)
    assert check.status == "fail" and "'app-id'" in check.detail


def test_boot_event_digest_change_fails_its_rtmr():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    events = json.loads(json.dumps(model["event_log"]))
    events[0]["digest"] = "00" * 48
    check = rtmr_check(parse_event_log(events), report)
    assert check.status == "fail" and "RTMR0" in check.detail


def test_identity_values_are_extracted():
    log = parse_event_log(near_bundle()["model_attestations"][0]["event_log"])
    identity = log.identity()
    info = near_bundle()["model_attestations"][0]["info"]
    assert identity["app_id"] == info["app_id"]
    assert identity["compose_hash"] == info["compose_hash"]
    assert identity["instance_id"] == info["instance_id"]
    assert identity["os_image_hash"] == info["os_image_hash"]
    assert json.loads(identity["key_provider"])["name"] == "kms"


def test_app_defined_events_after_system_ready_are_listed():
    doc = _load("dstack_verifier_fixture_quote-report.json")
    names = [e.name for e in parse_event_log(doc["event_log"]).app_events()]
    assert names == ["LIUM_MINER_HOTKEY"]
    mpc = _load("nearmpc_public_data_2026-08.json")["tee_participant_info"]["Dstack"]
    assert [e.name for e in parse_event_log(mpc["tcb_info"]["event_log"]).app_events()] == [
        "mpc-image-digest"
    ]


def test_compose_binds_app_compose_and_mr_config_id():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    log = parse_event_log(model["event_log"])
    compose = model["info"]["tcb_info"]["app_compose"]
    check = compose_check(
        log, report, compose, {"info.compose_hash": model["info"]["compose_hash"]}
    )
    assert check.status == "pass" and "mr_config_id = 01" in check.detail


def test_compose_file_not_matching_fails():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    log = parse_event_log(model["event_log"])
    compose = model["info"]["tcb_info"]["app_compose"] + " "
    assert compose_check(log, report, compose).status == "fail"
    # Re-serialising the same JSON is a different string, hence a different hash.
    reserialised = json.dumps(json.loads(model["info"]["tcb_info"]["app_compose"]))
    assert compose_check(log, report, reserialised).status == "fail"


def test_simulator_compose_file_is_not_the_measured_one():
    sim = REPORTS / "dstack_simulator_v0.5.3"
    report = parse_quote(decode_quote_bytes((sim / "quote.hex").read_text())).report
    log = parse_event_log((sim / "eventlog.json").read_text())
    check = compose_check(log, report, (sim / "app-compose.json").read_text())
    assert check.status == "fail"
    assert "ea549f02" in check.detail


def test_claimed_compose_hash_that_differs_fails():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    log = parse_event_log(model["event_log"])
    compose = model["info"]["tcb_info"]["app_compose"]
    check = compose_check(log, report, compose, {"info.compose_hash": "00" * 32})
    assert check.status == "fail" and "info.compose_hash" in check.detail


def test_mr_config_id_not_matching_the_compose_hash_fails():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    log = parse_event_log(near_bundle()["gateway_attestation"]["event_log"])
    compose = near_bundle()["gateway_attestation"]["info"]["tcb_info"]["app_compose"]
    check = compose_check(log, report, compose)
    assert check.status == "fail" and "mr_config_id" in check.detail


def test_all_zero_mr_config_id_is_noted_not_failed():
    doc = _load("dstack_verifier_fixture_quote-report.json")
    report = parse_quote(decode_quote_bytes(doc["quote"])).report
    log = parse_event_log(doc["event_log"])
    check = compose_check(log, report, None)
    assert check.status == "skip" and "no app_compose" in check.detail


def test_info_registers_and_ids_must_match():
    model = near_bundle()["model_attestations"][0]
    report = parse_quote(decode_quote_bytes(model["intel_quote"])).report
    log = parse_event_log(model["event_log"])
    info = model["info"]
    assert info_check(info["tcb_info"], info, log, report).status == "pass"
    bad_tcb = {**info["tcb_info"], "rtmr2": "00" * 48}
    assert info_check(bad_tcb, info, log, report).status == "fail"
    bad_info = {**info, "instance_id": "ff" * 20}
    check = info_check(info["tcb_info"], bad_info, log, report)
    assert check.status == "fail" and "instance_id" in check.detail


def test_no_info_is_an_optional_skip():
    report = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")).report
    check = info_check(None, {}, None, report)
    assert check.status == "skip" and not check.required


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        {"imr": 0},
        [1, 2],
        [{"imr": 4, "event_type": 1, "digest": "00", "event": "", "event_payload": ""}],
        [{"imr": True, "event_type": 1, "digest": "00", "event": "", "event_payload": ""}],
        [{"imr": 0, "event_type": -1, "digest": "00", "event": "", "event_payload": ""}],
        [{"imr": 0, "event_type": 1, "digest": "zz", "event": "", "event_payload": ""}],
        [{"imr": 0, "event_type": 1, "digest": "00" * 49, "event": "", "event_payload": ""}],
        [{"imr": 3, "event_type": 1, "digest": "", "event": 5, "event_payload": ""}],
        [{"imr": 3, "event_type": 1, "digest": "", "event": "", "event_payload": "x"}],
        [{"imr": 3, "event_type": 1, "event": "", "event_payload": "", "version": 9}],
    ],
)
def test_malformed_logs_raise_event_log_error(bad):
    with pytest.raises(EventLogError):
        parse_event_log(bad if isinstance(bad, str) else json.dumps(bad))


def test_boot_event_without_digest_fails_the_replay_check():
    report = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")).report
    log = parse_event_log(
        [{"imr": 0, "event_type": 1, "digest": "", "event": "", "event_payload": ""}]
    )
    check = rtmr_check(log, report)
    assert check.status == "fail" and "no digest" in check.detail


def test_non_runtime_event_in_rtmr3_cannot_be_recomputed_and_fails():
    report = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin")).report
    log = parse_event_log(
        [{"imr": 3, "event_type": 7, "digest": "00" * 48, "event": "x", "event_payload": ""}]
    )
    check = rtmr_check(log, report)
    assert check.status == "fail" and "non-runtime" in check.detail
