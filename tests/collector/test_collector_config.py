"""The collector's TOML configuration: the fixed minimal form, optional keys, and errors that
name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest
from teelog.attestation.config_table import parse_duration
from teelog.collector.config import ConfigError, load_config, parse_size

MINIMAL = """
[log]
data = "/path/to/data"

[[nodes]]
name = "node-1"
url = "http://127.0.0.1:8001"
format = "auto"
interval = "5s"
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "collector.toml"
    path.write_text(text)
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_minimal_fixed_form_loads_with_defaults(tmp_path):
    config = _load(tmp_path, MINIMAL)
    assert config.data == Path("/path/to/data")
    (node,) = config.nodes
    assert (node.name, node.url, node.format, node.interval) == (
        "node-1", "http://127.0.0.1:8001", "auto", 5.0,
    )
    assert node.receipts is True  # auto may be a teelog node with a receipts feed
    assert node.max_response_bytes == 16 * 2**20
    assert config.webhooks == ()
    assert config.collateral.files == ()


def test_optional_keys_are_read(tmp_path, monkeypatch):
    coll = tmp_path / "coll.json"
    coll.write_text("{}")
    config = _load(
        tmp_path,
        MINIMAL.replace('data = "/path/to/data"', 'data = "data"')
        + """
[[nodes]]
name = "near"
url = "https://cloud-api.near.ai/"
format = "near-gateway"
interval = "2m"
model = "openai/gpt-oss-120b"
token_env = "NEAR_TOKEN"
timeout = "250ms"
max_response_bytes = "2MiB"

[collateral]
pccs_url = "https://pccs.example/"
cache_dir = "cache"
files = ["coll.json"]

[[webhooks]]
url = "https://hooks.example/teelog"
secret_env = "HOOK_SECRET"
nodes = ["near"]

[collector]
verify_processes = 2
""",
    )
    assert config.verify_processes == 2
    near = config.node("near")
    assert near.url == "https://cloud-api.near.ai"
    assert (near.interval, near.timeout, near.max_response_bytes) == (120.0, 0.25, 2 * 2**20)
    assert near.receipts is False  # a gateway has no receipts feed
    assert config.data == tmp_path / "data"  # relative to the file
    assert config.collateral.files == (tmp_path / "coll.json",)
    assert config.collateral.cache_dir == tmp_path / "cache"
    monkeypatch.setenv("NEAR_TOKEN", "s3cret")
    monkeypatch.setenv("HOOK_SECRET", "k")
    assert near.token() == "s3cret"
    (hook,) = config.webhooks
    assert hook.secret() == b"k"
    assert hook.wants("near") and not hook.wants("node-1")


def test_bad_interval_names_the_node_and_key(tmp_path):
    text = MINIMAL + '\n[[nodes]]\nname = "n2"\nurl = "http://x"\ninterval = "fast"\n'
    assert _error(tmp_path, text) == 'nodes[1].interval: expected a duration like "30s", got "fast"'


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('data = "/path/to/data"', 'datadir = "x"'), "log.datadir: unknown key"),
        (('data = "/path/to/data"', 'database = "mysql://h/d"'), "log.database: unsupported"),
        (('data = "/path/to/data"', 'objects = "o"'), "log.objects: an object store is not"),
        (('format = "auto"', 'format = "openai"'), "nodes[0].format: expected one of auto, "),
        (('url = "http://127.0.0.1:8001"', 'url = "ftp://x"'), "nodes[0].url: expected an http"),
        (('url = "http://127.0.0.1:8001"', ""), "nodes[0].url: is required"),
        (('name = "node-1"', 'name = "a b"'), "nodes[0].name: expected letters"),
        (('interval = "5s"', 'interval = "-5s"'), "nodes[0].interval: expected a duration"),
        (('interval = "5s"', "interval = 0"), "nodes[0].interval: must be a positive"),
        (('interval = "5s"', 'interval = "5s"\ncolour = "red"'), "nodes[0].colour: unknown key"),
        (('url = "http://127.0.0.1:8001"', 'url = "http://u:p@h"'), "nodes[0].url: credentials"),
    ],
)
def test_config_errors_name_the_offending_key(tmp_path, change, message):
    assert _error(tmp_path, MINIMAL.replace(*change)).startswith(message)


def test_duplicate_node_names_are_refused(tmp_path):
    assert _error(tmp_path, MINIMAL + MINIMAL.split("\n", 3)[3]).startswith(
        "nodes[1].name: 'node-1' is also nodes[0]"
    )


def test_webhook_errors_name_the_key(tmp_path):
    hook = '\n[[webhooks]]\nurl = "https://h.example/x"\nnodes = ["nope"]\n'
    assert _error(tmp_path, MINIMAL + hook) == "webhooks[0].nodes[0]: no node named 'nope'"
    hook = '\n[[webhooks]]\nurl = "javascript:alert(1)"\n'
    assert _error(tmp_path, MINIMAL + hook).startswith("webhooks[0].url: expected an http")
    hook = '\n[[webhooks]]\nurl = "https://h.example/x"\nsecret_env = "not a name"\n'
    assert _error(tmp_path, MINIMAL + hook).startswith("webhooks[0].secret_env: expected an env")


def test_missing_collateral_file_is_named(tmp_path):
    text = MINIMAL + '\n[collateral]\nfiles = ["missing.json"]\n'
    assert _error(tmp_path, text).startswith("collateral.files[0]: no such file")


def test_invalid_toml_and_unreadable_file_are_reported(tmp_path):
    assert "not valid TOML" in _error(tmp_path, "[log\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_durations_and_sizes():
    assert parse_duration("5s", "k") == 5.0
    assert parse_duration("2m", "k") == 120.0
    assert parse_duration("1.5h", "k") == 5400.0
    assert parse_duration("250ms", "k") == 0.25
    assert parse_duration(30, "k") == 30.0
    with pytest.raises(ConfigError, match=r'^k: expected a duration like "30s", got True'):
        parse_duration(True, "k")
    assert parse_size("64KiB", "k") == 65536
    assert parse_size(1000, "k") == 1000
    with pytest.raises(ConfigError, match=r"^k: expected a size"):
        parse_size("lots", "k")


def test_the_log_table_defaults_to_xdg_data_and_environment_overrides_it(tmp_path, monkeypatch):
    monkeypatch.delenv("TEELOG_DATA", raising=False)
    monkeypatch.delenv("TEELOG_DATABASE", raising=False)
    monkeypatch.delenv("TEELOG_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    config = _load(tmp_path, MINIMAL.replace('data = "/path/to/data"', ""))
    assert config.data == tmp_path / "xdg" / "teelog" and config.database is None
    monkeypatch.setenv("TEELOG_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("TEELOG_DATABASE", "sqlite:///x.db")
    config = _load(tmp_path, MINIMAL)
    assert (config.data, config.database) == (tmp_path / "env", "sqlite:///x.db")
