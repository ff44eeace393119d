"""``teelog monitor --model NAME --expect FILE`` on a real log of the key broker's decisions.

The log is the broker's own (tests/broker/broker_helpers.py): sample releases and denials go
through its HTTP app; the TDX requester is the real quote of tests/data/tdx, whose claims the
broker logs when it refuses the quote for its binding. A real quote cannot bind a fresh nonce,
so the TDX *release* is that logged denial turned into the release it would have been
(decision, reason, failed, response digest changed; every claim as the broker logged it).
The log is served over HTTP by the explorer's log blueprint and read by the monitor.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from teelog.entries.key_release import encode_key_release
from teelog.entries.release_policy import parse_policy
from teelog.explorer.log_routes import log_blueprint
from teelog.log.served import HttpLog
from teelog.monitor.follow import Monitor
from teelog.monitor.releases import ExpectError, load_expect, parse_expect
from werkzeug.serving import make_server

from teelog.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "broker"))
from broker_helpers import (
    RESOURCE,
    SAMPLE_POLICY,
    TDX,
    TDX_NOW,
    Guest,
    Setup,
    entry_at,
    make_setup,
)

MODEL = "acme/llama"  # the model of broker_helpers' manifest
UPTODATE = (TDX / "dcapqvl_tdx_v4_uptodate.quote.bin").read_bytes()
UPTODATE_MRTD = ("91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
                 "de03ae6dc5f87f27428b2538873118b7")  # tests/data/tdx/README.md
MRTD_POLICY = {
    "version": "1.0",
    "anyOf": [{"allOf": [{"claim": "tdx.mrtd", "in": [UPTODATE_MRTD]}]}],
}


class Sink:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def deliver(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)


@contextmanager
def served(s: Setup) -> Iterator[str]:
    """The broker's log under /log/ on 127.0.0.1 (the explorer's blueprint on a bare app)."""
    app = Flask("served")
    app.register_blueprint(log_blueprint(s.log))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/log/"
    finally:
        server.shutdown()


def broker_dir(tmp_path: Path) -> Path:
    """The broker's files and log, apart from the monitor's state and expect file."""
    path = tmp_path / "broker"
    path.mkdir()
    return path


def sample_release(s: Setup) -> int:
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    r = guest.fetch()
    assert r.status_code == 200, r.text
    return int(r.headers["Teelog-Entry-Index"])


def sample_denial(s: Setup) -> int:
    """A fetch without token or session: denied before the resource (so the model) is known."""
    s.client.cookies.clear()  # no token, no session: a logged denial of the resource
    r = Guest(s.client).fetch()
    assert r.status_code == 401
    return int(r.headers["Teelog-Entry-Index"])


def policy_denial(s: Setup) -> int:
    """Sample evidence under a policy that does not allow it: refused at the resource."""
    s.client.cookies.clear()
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    r = guest.fetch()
    assert r.status_code != 200
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert entry["model"]["name"] == MODEL and entry["reason"] == "policy.insecure_sample"
    return int(r.headers["Teelog-Entry-Index"])


def tdx_log(tmp_path: Path) -> tuple[Setup, int, int]:
    """A broker log with its key_policy entry, the broker's denial of the real TDX quote, a
    denial at the resource, and the release built from the first; (setup, denial index of
    the TDX quote, release index)."""
    s = make_setup(tmp_path, MRTD_POLICY, now=TDX_NOW,
                   collateral=["dcapqvl_tdx_v4_uptodate.collateral.json"])
    policy = entry_at(s.log, s.broker.publish_policies()[0])
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    quote = {"quote": base64.b64encode(UPTODATE).decode(), "cc_eventlog": None}
    r = guest.attest(quote)
    assert r.status_code == 401
    denial = int(r.headers["Teelog-Entry-Index"])
    denied = entry_at(s.log, denial)
    assert denied["requester"]["claims"]["tdx.mrtd"] == UPTODATE_MRTD
    # Refused at attest, before a resource was named: model and policy are the resource's
    # (its key_policy entry), as in the broker's releases at resource time.
    release = {**denied, "decision": "released", "reason": None, "failed": [],
               "resource": policy["resource"], "model": policy["model"],
               "policy_sha256": policy["policy_sha256"],
               "response_sha256": "ab" * 32}
    policy_denial(s)  # refused by the resource's policy: a denial of the model
    return s, denial, s.log.append(encode_key_release(release))


def policy_digest(s: Setup) -> str:
    return s.broker.config.resources[0].policy.sha256


def expect(path: Path, measurements: dict[str, Any], published: list[str]) -> Path:
    path.write_text(json.dumps({"version": 1, "measurements": measurements,
                                "published_policies": published}))
    return path


def monitor(url: str, s: Setup, state: Path, sink: Sink, expect_file: Path,
            model: str = MODEL) -> Monitor:
    return Monitor(HttpLog(url), s.log.vkey, state, sink, reverify=None,
                   releases=load_expect(expect_file, model))


def types(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["type"] for a in alerts]


def test_a_release_within_expectations_raises_no_alert_and_the_denial_is_counted(tmp_path):
    s, _, _ = tdx_log(broker_dir(tmp_path))
    exp = expect(tmp_path / "expect.json", MRTD_POLICY, [policy_digest(s)])
    sink = Sink()
    with served(s) as url:
        result = monitor(url, s, tmp_path / "state.json", sink, exp).poll()
    assert result.size == s.log.size and sink.alerts == []
    assert result.denials == 1


def test_a_release_to_measurements_outside_the_expected_set_alerts_with_the_entry(tmp_path):
    s, _, release = tdx_log(broker_dir(tmp_path))
    other = {"version": "1.0", "anyOf": [{"allOf": [{"claim": "tdx.mrtd", "in": ["00" * 48]}]}]}
    exp = expect(tmp_path / "expect.json", other, [policy_digest(s)])
    sink = Sink()
    with served(s) as url:
        monitor(url, s, tmp_path / "state.json", sink, exp).poll()
    assert types(sink.alerts) == ["release.unexpected_measurements"]
    alert = sink.alerts[0]
    assert alert["index"] == release and alert["id"] == f"release.unexpected_measurements:{release}"
    assert alert["model"] == MODEL and alert["claims"]["tdx.mrtd"] == UPTODATE_MRTD
    assert [f["name"] for f in alert["failed"]] == ["policy.conditions"]
    assert "tdx.mrtd in" in alert["failed"][0]["detail"]
    assert alert["entry"] == json.loads(s.log.entry(release))
    assert Path(alert["evidence"]).read_bytes() == s.log.entry(release)


def test_a_release_under_a_policy_the_owner_did_not_publish_alerts(tmp_path):
    s, _, release = tdx_log(broker_dir(tmp_path))
    exp = expect(tmp_path / "expect.json", MRTD_POLICY, ["11" * 32])
    sink = Sink()
    with served(s) as url:
        monitor(url, s, tmp_path / "state.json", sink, exp).poll()
    assert types(sink.alerts) == ["release.unpublished_policy"]
    assert sink.alerts[0]["index"] == release
    assert sink.alerts[0]["policy_sha256"] == policy_digest(s)


def test_an_insecure_sample_release_alerts_through_the_cli_once_exit_1(tmp_path, capsys):
    s = make_setup(broker_dir(tmp_path), SAMPLE_POLICY)
    sample_denial(s)
    release = sample_release(s)
    # Even an owner whose expected set names the sample TEE is alerted: it is no TEE at all.
    tee_sample = {"version": "1.0", "anyOf": [{"allOf": [{"claim": "tee", "equals": "sample"}]}]}
    exp = expect(tmp_path / "expect.json", tee_sample, [policy_digest(s)])
    with served(s) as url:
        code = main(["monitor", "--url", url, "--vkey", s.log.vkey, "--state",
                     str(tmp_path / "state.json"), "--no-reverify", "--once",
                     "--model", MODEL, "--expect", str(exp)])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert types(out) == ["release.insecure_sample"]
    assert out[0]["index"] == release and out[0]["tee"] == "sample"
    assert out[0]["entry"]["resource"] == RESOURCE


def test_releases_of_another_model_are_ignored(tmp_path):
    s = make_setup(broker_dir(tmp_path), SAMPLE_POLICY)
    sample_release(s)
    sample_denial(s)
    exp = expect(tmp_path / "expect.json", MRTD_POLICY, [])
    sink = Sink()
    with served(s) as url:
        result = monitor(url, s, tmp_path / "state.json", sink, exp, model="acme/other").poll()
    assert sink.alerts == [] and result.denials == 0
    assert result.entries_read == s.log.size


def test_a_restart_does_not_alert_again_and_a_new_release_alerts_once(tmp_path):
    s = make_setup(broker_dir(tmp_path), SAMPLE_POLICY)
    first = sample_release(s)
    exp = expect(tmp_path / "expect.json", MRTD_POLICY, [policy_digest(s)])
    state = tmp_path / "state.json"
    with served(s) as url:
        sink = Sink()
        monitor(url, s, state, sink, exp).poll()
        assert types(sink.alerts) == ["release.insecure_sample", "release.unexpected_measurements"]
        assert {a["index"] for a in sink.alerts} == {first}
        again = Sink()
        restarted = monitor(url, s, state, again, exp)
        assert restarted.poll().alerts == [] and again.alerts == []
        second = sample_release(s)
        restarted.poll()
        assert {a["index"] for a in again.alerts} == {second} and len(again.alerts) == 2
        assert monitor(url, s, state, Sink(), exp).poll().alerts == []


GOOD = {"version": 1, "measurements": MRTD_POLICY, "published_policies": ["ab" * 32]}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({**GOOD, "version": "1"}), "version: expected 1"),
        (json.dumps({**GOOD, "extra": 1}), "extra: unknown member"),
        (json.dumps({"version": 1, "published_policies": []}), "measurements: missing"),
        (json.dumps({**GOOD, "measurements": {"version": "1.0", "anyOf": [
            {"allOf": [{"claim": "tdx.mrtdd", "equals": "aa"}]}]}}),
         "measurements.anyOf[0].allOf[0].claim: unknown claim 'tdx.mrtdd'"),
        (json.dumps({**GOOD, "measurements": [1]}), "measurements: a policy is a JSON object"),
        (json.dumps({**GOOD, "measurements": {**MRTD_POLICY, "allow_insecure_sample": True}}),
         "measurements.allow_insecure_sample: must be false or absent"),
        (json.dumps({**GOOD, "published_policies": "ab" * 32}), "published_policies: expected"),
        (json.dumps({**GOOD, "published_policies": ["ab" * 32, "AB" * 32]}),
         "published_policies[1]: expected 64 lowercase hex digits"),
    ],
)
def test_a_malformed_expect_file_exits_2_with_one_line_naming_the_field(
    tmp_path, capsys, text, says
):
    path = tmp_path / "expect.json"
    path.write_text(text)
    code = main(["monitor", "--url", "http://127.0.0.1:9/log/", "--vkey", "x+1+AA==",
                 "--state", str(tmp_path / "s.json"), "--model", MODEL, "--expect", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"teelog monitor: --expect {path}: ") and says in err[0]


def test_the_good_expect_file_of_the_malformed_cases_parses():
    parsed = parse_expect(GOOD, MODEL)
    assert parsed.published_policies == {"ab" * 32} and parsed.model == MODEL
    assert parsed.measurements.sha256 == parse_policy(MRTD_POLICY).sha256
    with pytest.raises(ExpectError, match=r"published_policies\[0\]"):
        parse_expect({**GOOD, "published_policies": [7]}, MODEL)


def test_model_without_expect_is_an_argument_error(tmp_path, capsys):
    code = main(["monitor", "--url", "http://127.0.0.1:9/log/", "--vkey", "x+1+AA==",
                 "--state", str(tmp_path / "s.json"), "--model", MODEL])
    assert code == 2
    assert "--model and --expect go together" in capsys.readouterr().err
