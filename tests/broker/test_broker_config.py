"""broker.toml: every error names its key; keys at rest must be 0600 and match the manifest."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from broker_helpers import SAMPLE_POLICY, entry_at, make_setup, write_key, write_manifest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from teelog.broker.config import ConfigError, load_config
from teelog.broker.service import Broker
from teelog.entries.release_policy import load_policy
from teelog.models import key_id, manifest_digest, parse_manifest

from teelog.cli import main


def _files(tmp, *, key_mode=0o600, policy=SAMPLE_POLICY, path="acme/mk/v1"):
    key = os.urandom(32)
    write_key(tmp / "k.key", key, key_mode)
    write_manifest(tmp / "m.json", key, "m", "1")
    (tmp / "p.json").write_text(json.dumps(policy))
    (tmp / "broker.toml").write_text(f"""
[log]
data = "data"
[[resources]]
path = "{path}"
key = "k.key"
manifest = "m.json"
policy = "p.json"
""")
    return key


def _error(tmp) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(tmp / "broker.toml")
    return str(info.value)


def test_a_resource_is_read_with_its_manifest_digest_and_key_id(tmp_path):
    key = _files(tmp_path)
    config = load_config(tmp_path / "broker.toml")
    (resource,) = config.resources
    assert resource.key_id == key_id(key) and len(resource.key_id) == 64
    manifest = parse_manifest((tmp_path / "m.json").read_bytes())
    assert resource.manifest_sha256 == manifest_digest(manifest)
    assert (resource.model, resource.version) == ("m", "1")
    assert config.data == tmp_path / "data"
    assert resource.read_key() == key


def test_a_key_readable_by_others_is_refused(tmp_path):
    _files(tmp_path, key_mode=0o644)
    assert _error(tmp_path).startswith("resources[0].key: ") and "0644" in _error(tmp_path)


def test_a_key_of_the_wrong_size_is_refused(tmp_path):
    _files(tmp_path)
    write_key(tmp_path / "k.key", b"short")
    assert _error(tmp_path).startswith("resources[0].key: ") and "5 bytes" in _error(tmp_path)


def test_a_key_that_is_not_the_manifests_is_refused(tmp_path):
    _files(tmp_path)
    write_manifest(tmp_path / "m.json", os.urandom(32), "m", "1")  # another key's manifest
    assert _error(tmp_path).startswith("resources[0].key: ") and "key_id" in _error(tmp_path)


def test_a_manifest_that_is_not_a_teelog_model_manifest_is_refused(tmp_path):
    _files(tmp_path)
    (tmp_path / "m.json").write_text(json.dumps({"model": "m", "version": "1"}))
    assert _error(tmp_path).startswith("resources[0].manifest: ")


def test_the_owners_signature_does_not_change_the_manifest_digest(tmp_path):
    key = _files(tmp_path)
    unsigned = load_config(tmp_path / "broker.toml").resources[0].manifest_sha256
    manifest = parse_manifest((tmp_path / "m.json").read_bytes())
    (tmp_path / "m.json").write_bytes(manifest.signed(Ed25519PrivateKey.generate()).dumps())
    assert load_config(tmp_path / "broker.toml").resources[0].manifest_sha256 == unsigned
    assert key_id(key) == load_config(tmp_path / "broker.toml").resources[0].key_id


def test_a_bad_policy_names_the_resource(tmp_path):
    _files(tmp_path, policy={"version": "1.0", "anyOf": [{"allOf": [{"claim": "x", "in": [1]}]}]})
    assert _error(tmp_path).startswith("resources[0].policy: anyOf[0].allOf[0].claim")


@pytest.mark.parametrize("path", ["acme/mk", "acme/../v1", "acme/mk/v 1", "a/b/c/d"])
def test_a_bad_resource_path_is_refused(tmp_path, path):
    _files(tmp_path, path=path)
    assert _error(tmp_path).startswith("resources[0].path: ")


def test_unknown_keys_and_a_bad_log_table_are_named(tmp_path):
    _files(tmp_path)
    text = (tmp_path / "broker.toml").read_text()
    (tmp_path / "broker.toml").write_text(text + 'colour = "red"\n')
    assert _error(tmp_path).startswith("resources[0].colour: unknown key")
    (tmp_path / "broker.toml").write_text(text.replace('data = "data"', "data = 5"))
    assert _error(tmp_path).startswith("log.data: expected a directory path")
    (tmp_path / "broker.toml").write_text(text.replace('data = "data"', 'objects = "s3://b/p"'))
    assert _error(tmp_path).startswith("log.objects: an object store is not supported")


def test_teelog_broker_exits_2_on_an_unusable_config(tmp_path, capsys):
    _files(tmp_path, key_mode=0o640)
    assert main(["broker", "--config", str(tmp_path / "broker.toml")]) == 2
    assert "resources[0].key" in capsys.readouterr().err


def test_teelog_broker_exits_2_without_a_log(tmp_path, capsys):
    _files(tmp_path)
    assert main(["broker", "--config", str(tmp_path / "broker.toml")]) == 2
    assert "holds no log" in capsys.readouterr().err


def test_policies_are_logged_once_and_again_when_they_change(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    (first,) = s.broker.publish_policies()
    assert s.broker.publish_policies() == [first]  # a restart with the same policy
    entry = entry_at(s.log, first)
    assert entry["type"] == "key_policy" and entry["policy"] == SAMPLE_POLICY
    assert entry["policy_sha256"] == s.broker.config.resources[0].policy.sha256
    changed = {**SAMPLE_POLICY, "allow_insecure_sample": False}
    (tmp_path / "policy.json").write_text(json.dumps(changed))
    config = s.broker.config
    resource = replace(config.resources[0], policy=load_policy(tmp_path / "policy.json"))
    restarted = Broker(replace(config, resources=(resource,)), s.log, clock=s.clock)
    (second,) = restarted.publish_policies()
    assert second > first and entry_at(s.log, second)["policy"] == changed


def test_an_unreadable_broker_toml_says_why(tmp_path):
    path = tmp_path / "broker.toml"
    assert "cannot read" in _error(tmp_path)
    path.write_bytes(b"\xff\xfe[log]\n")
    assert "is not UTF-8 text" in _error(tmp_path)
    path.write_text("[log\n")
    assert "not valid TOML" in _error(tmp_path)
