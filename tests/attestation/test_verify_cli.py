"""``teelog verify``: exit codes, table and --json shape."""

from __future__ import annotations

import argparse
import json

import pytest
from attestation_data import NEAR_BUNDLE, NEAR_NONCE, REPORTS, TDX

from teelog.verify_cli import register

V4 = str(TDX / "dcapqvl_tdx_v4_uptodate.quote.bin")
V4_COLL = str(TDX / "dcapqvl_tdx_v4_uptodate.collateral.json")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="teelog")
    register(parser.add_subparsers())
    args = parser.parse_args(["verify", *argv])
    return args.func(args)


def test_verified_quote_exits_0_with_a_table(capsys):
    assert run(V4, "--collateral", V4_COLL, "--at", "1751624191") == 0
    out = capsys.readouterr().out
    assert out.startswith("status: verified")
    assert "tdx.quote" in out and "collateral FMSPC b0c06f000000: sha256" in out


def test_json_output_has_the_fixed_shape(capsys):
    code = run(
        str(NEAR_BUNDLE),
        "--collateral",
        str(TDX / "dcapqvl_tdx_v5.collateral.json"),
        "--collateral",
        str(TDX / "nearmpc_2026_tdx_v4.collateral.json"),
        "--at",
        "2026-03-11T03:33:20Z",
        "--nonce",
        NEAR_NONCE,
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # the gateway's collateral is archived only for Aug-Sep 2026
    assert out["status"] == "unverifiable"
    roles = [(a["role"], a["model"], a["status"]) for a in out["attestations"]]
    assert roles == [
        ("gateway", None, "unverifiable"),
        ("model", "openai/gpt-oss-120b", "verified"),
    ]
    assert {"role", "model", "signing_address", "status", "checks"} <= set(out["attestations"][1])


def test_warning_exits_0():
    assert (
        run(
            str(TDX / "dcapqvl_sgx_v3.quote.bin"),
            "--collateral",
            str(TDX / "dcapqvl_sgx_v3.collateral.json"),
            "--at",
            "1751624924",
        )
        == 0
    )


def test_unverifiable_and_failed_exit_1(tmp_path, capsys):
    assert run(V4, "--at", "1751624191") == 1  # no collateral
    assert run(V4, "--collateral", V4_COLL, "--at", "2026-01-01T00:00:00Z") == 1  # archived
    assert "FAIL" not in capsys.readouterr().out
    altered = bytearray((TDX / "dcapqvl_tdx_v4_uptodate.quote.bin").read_bytes())
    altered[568] ^= 1  # report_data
    path = tmp_path / "altered.quote.bin"
    path.write_bytes(bytes(altered))
    assert run(str(path), "--at", "1751624191") == 1  # failed, without collateral too
    assert "FAIL" in capsys.readouterr().out


def test_signature_response_is_verified_as_a_receipt(tmp_path, capsys):
    samples = json.loads((REPORTS / "nearai_docs_signature_samples.json").read_text())["samples"]
    sig = tmp_path / "sig.json"
    sig.write_text(json.dumps(samples[0]["signature_response"]))
    run(str(sig), "--json")
    out = json.loads(capsys.readouterr().out)
    receipt = out["attestations"][0]
    assert receipt["role"] == "receipt"
    assert {c["name"]: c["status"] for c in receipt["checks"]}["receipt.signature"] == "pass"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(samples[1]["signature_response"]))
    assert run(str(forged)) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["/nonexistent/file"],
        [str(REPORTS / "README.md")],
        [str(REPORTS / "nearai_docs_signature_samples.json")],
        [V4, "--at", "yesterday"],
        [V4, "--nonce", "xyz"],
        [V4, "--nonce", "abcd"],
        [V4, "--collateral", str(REPORTS / "README.md")],
        [str(NEAR_BUNDLE), "--rim", "/nonexistent"],
        [V4, "--request", V4],
    ],
)
def test_unusable_input_exits_2(argv, capsys):
    assert run(*argv) == 2
    assert capsys.readouterr().err.startswith("teelog verify:")


def test_broken_json_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"intel_quote": ')
    assert run(str(bad)) == 2


def test_at_that_is_no_time_exits_2_with_the_reason(capsys):
    assert run(V4, "--collateral", V4_COLL, "--at", "soon") == 2
    err = capsys.readouterr().err
    assert "--at" in err and "neither RFC 3339" in err and "Unix seconds" in err


def test_table_summarises_measurements(capsys):
    run(
        str(NEAR_BUNDLE),
        "--collateral",
        str(TDX / "dcapqvl_tdx_v5.collateral.json"),
        "--at",
        "1773200000",
    )
    out = capsys.readouterr().out
    assert "gpus: 8 x HOPPER, driver 570.172.08, VBIOS 96.00.cf.00.02" in out
    assert "tcb_status: UpToDate" in out
    assert "model openai/gpt-oss-120b 0x56d070df1c6be444b007839ef9cf67cec7c12b8b: verified" in out
