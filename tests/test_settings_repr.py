"""``repr()`` of settings and key objects never shows a token, secret or private key (they
end up in logs, tracebacks and debuggers)."""

from __future__ import annotations

from teelog.attestation.signing import EcdsaSigner, Ed25519Signer
from teelog.collector.config import NodeConfig, WebhookConfig
from teelog.log.note import Ed25519Signer as LogSigner
from teelog.monitor.alerts import WebhookSink
from teelog.node.keys import SigningKeys
from teelog.node.settings import NodeSettings

TOKEN = "sk-live-0123456789abcdef"


def test_node_settings_hide_both_tokens():
    settings = NodeSettings(upstream="http://127.0.0.1:9", token=TOKEN, upstream_token=TOKEN + "x")
    text = repr(settings)
    assert TOKEN not in text and "http://127.0.0.1:9" in text
    assert settings.token == TOKEN  # still there for the code that needs it


def test_signing_keys_of_node_and_log_hide_their_private_keys():
    keys = SigningKeys.random()
    assert keys.ecdsa.private_bytes.hex() not in repr(keys)
    assert keys.ed25519.private_bytes.hex() not in repr(keys)
    for signer in (EcdsaSigner.generate(), Ed25519Signer.generate()):
        assert signer.private_bytes.hex() not in repr(signer)
    log_signer = LogSigner.generate("teelog.test/repr")
    text = repr(log_signer)
    assert log_signer.seed.hex() not in text and repr(log_signer.seed) not in text
    assert "teelog.test/repr" in text


def test_collector_and_monitor_settings_name_secrets_never_hold_them(monkeypatch):
    monkeypatch.setenv("NODE_TOKEN", TOKEN)
    monkeypatch.setenv("HOOK_SECRET", TOKEN)
    node = NodeConfig(name="n", url="https://node.example", token_env="NODE_TOKEN")
    hook = WebhookConfig(url="https://hooks.example/in", secret_env="HOOK_SECRET")
    assert node.token() == TOKEN and TOKEN not in repr(node)
    assert hook.secret() == TOKEN.encode() and TOKEN not in repr(hook)
    sink = WebhookSink(f"https://hooks.slack.example/services/{TOKEN}")
    assert TOKEN not in repr(sink) and "hooks.slack.example" in repr(sink)
