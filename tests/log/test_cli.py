"""``teelog log ...``: init, vkey, append, prove, and verify against a served log over HTTP."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from teelog.explorer.log_routes import log_blueprint
from teelog.log import Log, parse_vkey, verify_tlog_proof
from teelog.log.note import Ed25519Signer
from werkzeug.serving import make_server

from teelog.cli import main

ORIGIN = "teelog.test/cli"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_vkey_append_prove(tmp_path, capsys):
    data = str(tmp_path / "data")
    code, out, _ = run(capsys, "log", "init", "--data", data, "--origin", ORIGIN)
    assert code == 0
    vkey = out.strip()
    assert parse_vkey(vkey).name == ORIGIN
    assert run(capsys, "log", "vkey", "--data", data)[1].strip() == vkey
    files = []
    for i, content in enumerate([b"one", b"two", b"one"]):
        f = tmp_path / f"e{i}"
        f.write_bytes(content)
        files.append(str(f))
    code, out, _ = run(capsys, "log", "append", "--data", data, *files)
    assert code == 0 and out.split() == ["0", "1", "0"]
    code, out, _ = run(capsys, "log", "prove", "--data", data, "--index", "1")
    assert code == 0
    assert verify_tlog_proof(out, b"two", parse_vkey(vkey)).index == 1


def test_cli_errors_are_clear_and_change_nothing(tmp_path, capsys):
    data = str(tmp_path / "data")
    code, _, err = run(capsys, "log", "vkey", "--data", data)
    assert code == 1 and "holds no log" in err
    run(capsys, "log", "init", "--data", data, "--origin", ORIGIN)
    code, _, err = run(capsys, "log", "init", "--data", data, "--origin", ORIGIN)
    assert code == 1 and "already holds a log" in err
    big = tmp_path / "big"
    big.write_bytes(b"x" * 65536)
    small = tmp_path / "small"
    small.write_bytes(b"ok")
    code, _, err = run(capsys, "log", "append", "--data", data, str(small), str(big))
    assert code == 1 and "at most 65535 bytes (nothing was appended)" in err
    code, _, err = run(capsys, "log", "append", "--data", data, str(tmp_path / "missing"))
    assert code == 1 and "cannot read" in err
    code, _, err = run(capsys, "log", "prove", "--data", data, "--index", "0")
    assert code == 1 and "no tree of size 0: the log has 0 entries" in err


@pytest.fixture
def served(tmp_path):
    """A log served over real HTTP on 127.0.0.1 (the blueprint on a bare Flask app)."""
    log = Log.create(tmp_path / "served", ORIGIN)
    app = Flask("served")
    app.register_blueprint(log_blueprint(log))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield log, f"http://127.0.0.1:{server.server_port}/log"
    server.shutdown()
    log.close()


def test_verify_audits_a_served_log_and_follows_it_with_state(served, tmp_path, capsys):
    log, url = served
    state = str(tmp_path / "state.json")
    log.append_many([b"entry %d" % i for i in range(600)])
    code, out, err = run(
        capsys, "log", "verify", "--url", url, "--vkey", log.vkey, "--state", state
    )
    assert code == 0, err
    assert "600 new entries re-hashed; root matches" in out and out.strip().endswith("OK")
    log.append_many([b"later %d" % i for i in range(100)])
    vkey_file = tmp_path / "vkey"
    vkey_file.write_text(log.vkey + "\n")
    code, out, err = run(
        capsys, "log", "verify", "--url", url, "--vkey", str(vkey_file), "--state", state
    )
    assert code == 0, err
    assert "100 new entries" in out and "consistency: size 600 -> 700 proven" in out


def test_verify_fails_on_a_wrong_key_a_fork_and_a_tampered_bundle(served, tmp_path, capsys):
    log, url = served
    log.append_many([b"entry %d" % i for i in range(300)])
    other = Log.create(tmp_path / "other", ORIGIN)
    code, _, err = run(capsys, "log", "verify", "--url", url, "--vkey", other.vkey)
    assert code == 1 and "signature" in err
    other.close()

    state = tmp_path / "state.json"
    assert (
        run(capsys, "log", "verify", "--url", url, "--vkey", log.vkey, "--state", str(state))[0]
        == 0
    )
    # A state from a different history (a fork) is detected.
    forked = state.read_text().replace(state.read_text().split('"root": "')[1][:44], "A" * 43 + "=")
    state.write_text(forked)
    code, _, err = run(
        capsys, "log", "verify", "--url", url, "--vkey", log.vkey, "--state", str(state)
    )
    assert code == 1 and "FAILED" in err

    bundle = log.tiles_dir / "tile" / "entries" / "000"
    data = bytearray(bundle.read_bytes())
    data[5] ^= 1
    bundle.write_bytes(bytes(data))
    code, _, err = run(capsys, "log", "verify", "--url", url, "--vkey", log.vkey)
    assert code == 1 and "does not hash to its level-0 tile cell" in err


def test_verify_rejects_bad_keys_and_reports_an_unreachable_server(capsys):
    vkey = Ed25519Signer.generate(ORIGIN).vkey
    code, _, err = run(capsys, "log", "verify", "--url", "http://127.0.0.1:9/log", "--vkey", vkey)
    assert code == 1 and "cannot reach" in err
    bad = vkey[:-2] + ("A=" if vkey[-2] != "A" else "B=")
    code, _, err = run(capsys, "log", "verify", "--url", "http://127.0.0.1:9/log", "--vkey", bad)
    assert code == 2 and "--vkey" in err


def test_verify_does_not_follow_a_redirect_away_from_the_audited_log(served, capsys):
    log, url = served
    log.append_many([b"entry %d" % i for i in range(3)])
    elsewhere = Flask("elsewhere")

    @elsewhere.get("/log/<path:rest>")
    def moved(rest: str):
        return "", 302, {"Location": f"{url}/{rest}"}

    server = make_server("127.0.0.1", 0, elsewhere, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code, out, err = run(
            capsys, "log", "verify", "--url", f"http://127.0.0.1:{server.server_port}/log",
            "--vkey", log.vkey,
        )
    finally:
        server.shutdown()
    assert code == 1 and "OK" not in out
    assert "HTTP 302 redirect to" in err and "not followed" in err
