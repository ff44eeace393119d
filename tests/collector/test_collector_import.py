"""``teelog import``: recorded reports appended as the collector would, verified "as of" the
capture time with archived collateral (tests/data/tdx/README.md pinned times)."""

from __future__ import annotations

import json

from collector_fakes import COLLATERAL_FILES, NEAR_BUNDLE, entries_of, write_config
from sqlmodel import Session, select
from teelog.collector.models import CollectorChange, CollectorNode, CollectorSigner
from teelog.log import Log

from teelog.cli import main

NEAR_NONCE = "deadbeef" + "0" * 55 + "1"  # the nonce the bundle was captured with
MODEL_TIME = "2026-03-11T03:33:20Z"  # 1773200000: model quote UpToDate
GATEWAY_TIME = "2026-08-30T03:21:24Z"  # 1787894484: gateway quote OutOfDate


def _collateral_args() -> list[str]:
    return [arg for path in COLLATERAL_FILES for arg in ("--collateral", str(path))]


def _checks(att) -> dict[str, str]:
    return {c["name"]: c["status"] for c in att["checks"]}


def test_import_of_the_near_bundle_at_its_pinned_time(data_dir, capsys):
    code = main([
        "import", "--data", str(data_dir), str(NEAR_BUNDLE), "--node", "near-ai",
        "--url", "https://cloud-api.near.ai", "--observed-at", MODEL_TIME,
        *_collateral_args(), "--json",
    ])
    assert code == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert (result["node"], result["format"], result["index"]) == ("near-ai", "near-gateway", 0)
    log = Log.open(data_dir)
    ((_, entry),) = entries_of(log, "attestation")
    assert (entry["source"], entry["nonce"]) == ("import", None)
    assert entry["observed_at"] == entry["verified_at"] == MODEL_TIME
    gateway, model = entry["attestations"]
    checks = _checks(model)
    assert (checks["tdx.quote"], checks["tdx.tcb"], checks["binding.report_data"]) == (
        "pass", "pass", "pass",
    )
    assert checks["binding.nonce"] == "skip"  # no nonce given: freshness is not claimed
    assert model["measurements"]["tcb_status"] == "UpToDate"
    # The gateway's collateral is from August 2026: not valid in March, so not used (and the
    # gateway's own signatures still verify); it is stored, since the reason cites its window.
    assert _checks(gateway)["tdx.collateral"] == "skip"
    assert _checks(gateway)["tdx.quote"] == "pass"
    assert gateway["status"] == "unverifiable"
    assert log.blobs.get(entry["blobs"]["report"]) == NEAR_BUNDLE.read_bytes()
    assert len(entry["blobs"]["collateral"]) == 2


def test_import_with_the_capture_nonce_and_a_later_verification_time(data_dir):
    args = ["import", "--data", str(data_dir), str(NEAR_BUNDLE), "--node", "near-ai",
            "--nonce", NEAR_NONCE, *_collateral_args()]
    assert main([*args, "--observed-at", MODEL_TIME]) == 0
    assert main([*args, "--observed-at", MODEL_TIME, "--at", GATEWAY_TIME]) == 0
    log = Log.open(data_dir)
    (_, first), (_, second) = entries_of(log, "attestation")
    assert first["nonce"] == NEAR_NONCE
    assert [a["status"] for a in first["attestations"]] == ["unverifiable", "verified"]
    assert (second["observed_at"], second["verified_at"]) == (MODEL_TIME, GATEWAY_TIME)
    gateway, model = second["attestations"]
    assert gateway["status"] == "warning"  # OutOfDate with advisories: verified, with a warning
    assert gateway["measurements"]["tcb_status"] == "OutOfDate"
    assert "INTEL-SA-01036" in gateway["measurements"]["advisory_ids"]
    assert model["status"] == "unverifiable"  # its March collateral does not cover August
    with Session(log.engine) as session:
        signers = {s.signing_address: s for s in session.exec(select(CollectorSigner))}
        state = session.get(CollectorNode, "near-ai")
        changes = {c.field: c for c in session.exec(select(CollectorChange))}
    # A verified (or warning) attestation vouches for its key; later ones that fail do not
    # take that back, but are remembered as the latest naming the key.
    model_signer = signers["0x56d070df1c6be444b007839ef9cf67cec7c12b8b"]
    gateway_signer = signers["0x614bc66ff0407dbb70b9c7ca1f5e983e4a02c921"]
    assert (model_signer.log_index, model_signer.status) == (0, "verified")
    assert (model_signer.named_index, model_signer.named_status) == (1, "unverifiable")
    assert (gateway_signer.log_index, gateway_signer.status) == (1, "warning")
    assert state.last_attestation_index == 1
    # The model verdict turned worse between the two: a change event, both indexes.
    worse = changes["model[openai/gpt-oss-120b].status"]
    assert (worse.old_index, worse.new_index) == (0, 1)
    assert (json.loads(worse.old), json.loads(worse.new)) == ("verified", "unverifiable")
    # The gateway's TCB could not be evaluated in March (no valid collateral), but can be later.
    tcb = changes["gateway.tcb_status"]
    assert (json.loads(tcb.old), json.loads(tcb.new)) == (None, "OutOfDate")
    assert "gateway.compose_hash" not in changes  # the same quote: registers unchanged


def test_import_refuses_a_file_that_is_not_a_report_and_appends_nothing(
    data_dir, tmp_path, capsys
):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    code = main(["import", "--data", str(data_dir), str(NEAR_BUNDLE), str(bad)])
    assert code == 2
    assert "not an attestation report" in capsys.readouterr().err
    assert Log.open(data_dir).checkpoint().size == 0


def test_import_names_what_a_file_is_when_it_is_another_kind_of_input(data_dir, tmp_path, capsys):
    gpu = NEAR_BUNDLE.parent / "model0_nvidia_payload.json"
    code = main(["import", "--data", str(data_dir), str(gpu)])
    assert code == 2
    assert "a gpu, not an attestation report" in capsys.readouterr().err
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 3000 + b"]" * 3000)
    assert main(["import", "--data", str(data_dir), str(deep)]) == 2
    assert "nested 3000 levels deep" in capsys.readouterr().err
    assert Log.open(data_dir).checkpoint().size == 0


def test_import_reports_bad_times_and_nonces(data_dir, capsys):
    assert main(["import", "--data", str(data_dir), str(NEAR_BUNDLE), "--at", "soon"]) == 2
    assert "not an RFC 3339 time" in capsys.readouterr().err
    assert main(["import", "--data", str(data_dir), str(NEAR_BUNDLE), "--nonce", "abc"]) == 2
    assert "--nonce: expected 64 hex digits" in capsys.readouterr().err


def test_import_with_a_config_file(data_dir, tmp_path):
    config = write_config(
        tmp_path / "c.toml", data_dir,
        [{"name": "near-ai", "url": "https://cloud-api.near.ai", "format": "near-gateway"}],
        extra="\n[collateral]\nfiles = [" + ", ".join(f'"{p}"' for p in COLLATERAL_FILES) + "]\n",
    )
    assert main(["import", "--config", str(config), str(NEAR_BUNDLE), "--node", "near-ai",
                 "--observed-at", MODEL_TIME]) == 0
    ((_, entry),) = entries_of(Log.open(data_dir), "attestation")
    assert _checks(entry["attestations"][1])["tdx.quote"] == "pass"


def test_collect_check_reports_config_errors_with_the_key(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[log]\ndata = "d"\n[[nodes]]\nname = "a"\nurl = "http://x"\n'
                      'interval = "fast"\n')
    assert main(["collect", "--config", str(config), "--check"]) == 2
    assert 'nodes[0].interval: expected a duration like "30s", got "fast"' in (
        capsys.readouterr().err
    )


def test_collect_once_polls_and_reports(fake_node, data_dir, tmp_path, capsys):
    node = fake_node()
    node.serve("/v1/attestation/report", NEAR_BUNDLE.read_bytes())
    config = write_config(
        tmp_path / "c.toml", data_dir,
        [{"name": "near", "url": node.url, "format": "near-gateway", "interval": "5s"}],
    )
    assert main(["collect", "--config", str(config), "--once"]) == 0
    assert "near: entry 0 failed, 0 changes" in capsys.readouterr().out


def test_collect_status_shows_health_and_test_webhooks_reports_answers(
    fake_node, data_dir, tmp_path, receiver, capsys, monkeypatch
):
    node = fake_node()
    node.serve("/v1/attestation/report", b"not json")
    monkeypatch.setenv("HOOK_SECRET", "s")
    config = write_config(
        tmp_path / "c.toml", data_dir,
        [{"name": "broken", "url": node.url, "format": "near-gateway", "interval": "5s"}],
        extra=f'\n[[webhooks]]\nurl = "{receiver.url}"\nsecret_env = "HOOK_SECRET"\n',
    )
    assert main(["collect", "--config", str(config), "--once"]) == 1
    assert "broken: garbage: GET /v1/attestation/report: not JSON" in capsys.readouterr().err
    assert main(["collect", "--config", str(config), "--status"]) == 0
    out = capsys.readouterr().out
    assert "consecutive failures 1" in out and "last error (garbage" in out
    assert main(["collect", "--config", str(config), "--test-webhooks"]) == 0
    assert f"{receiver.url}: ok 200" in capsys.readouterr().out
    assert json.loads(receiver.received[0][1])["type"] == "test"
    receiver.status = 500
    assert main(["collect", "--config", str(config), "--test-webhooks"]) == 1


def test_importing_the_same_capture_twice_is_idempotent(data_dir):
    args = ["import", "--data", str(data_dir), str(NEAR_BUNDLE), "--node", "near-ai",
            "--observed-at", MODEL_TIME, *_collateral_args()]
    assert main(args) == 0
    assert main(args) == 0  # identical entry bytes: the log answers with the existing index
    log = Log.open(data_dir)
    assert log.checkpoint().size == 1
    with Session(log.engine) as session:
        assert session.exec(select(CollectorChange)).all() == []
