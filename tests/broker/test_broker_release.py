"""End to end through the HTTP app with a real log: a sample release, and every refusal
logged as a denial before the answer."""

from __future__ import annotations

import base64
import hashlib
import json

from broker_helpers import (
    NEAR_GPU,
    RESOURCE,
    SAMPLE_POLICY,
    STRICT_POLICY,
    Guest,
    entry_at,
    failed_names,
    make_setup,
)
from jwcrypto import jwe
from starlette.testclient import TestClient
from teelog.broker.jwe import compact_of
from teelog.broker.token import TokenSigner
from teelog.log import leaf_hash, verify_inclusion


def _released(s, guest):
    guest.auth()
    r = guest.attest()
    assert r.status_code == 200, r.text
    return guest.fetch()


def test_sample_release_decrypts_with_the_ephemeral_key_and_is_logged_first(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    r = _released(s, guest)
    assert r.status_code == 200, r.text
    index = int(r.headers["Teelog-Entry-Index"])
    size = int(r.headers["Teelog-Checkpoint-Size"])
    assert size > index
    token = jwe.JWE()
    token.deserialize(compact_of(r.json()), key=guest.private)
    assert token.payload == s.key
    raw = s.log.entry(index)
    entry = json.loads(raw)
    assert entry["type"] == "key_release" and entry["decision"] == "released"
    assert entry["insecure"] is True and entry["requester"]["tee"] == "sample"
    assert entry["evidence_status"] == "unverifiable"  # sample evidence is never verified
    assert entry["resource"] == RESOURCE and entry["reason"] is None
    assert entry["response_sha256"] == hashlib.sha256(r.content).hexdigest()
    assert entry["requester"]["tee_pubkey_thumbprint"] == guest.private.thumbprint()
    assert entry["requester"]["nonce"] == guest.nonce
    assert entry["policy_sha256"] == s.broker.config.resources[0].policy.sha256
    for form in (s.key.hex(), base64.b64encode(s.key).decode(),
                 base64.urlsafe_b64encode(s.key).decode().rstrip("=")):
        assert form.encode() not in raw
    # The entry is in the signed checkpoint the header names.
    cp = s.log.checkpoint()
    assert cp.size == size
    verify_inclusion(index, size, leaf_hash(raw), s.log.inclusion_proof(index, size), cp.root)


def test_rsa_oaep_256_release_decrypts(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client, rsa=True)
    r = _released(s, guest)
    assert r.status_code == 200, r.text
    token = jwe.JWE()
    token.deserialize(compact_of(r.json()), key=guest.private)
    assert token.payload == s.key


def _denial(s, response, status=401):
    assert response.status_code == status, response.text
    assert "Teelog-Entry-Index" in response.headers
    entry = entry_at(s.log, int(response.headers["Teelog-Entry-Index"]))
    assert entry["decision"] == "denied" and entry["response_sha256"] is None
    assert response.json()["type"].startswith(
        "https://github.com/confidential-containers/kbs/errors/")
    return entry


def test_unknown_nonce_is_a_logged_denial(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    other = base64.b64encode(b"\x01" * 32).decode()
    # Evidence made for another challenge (an old or foreign nonce), sent with that nonce.
    entry = _denial(s, guest.attest(guest.sample_evidence(nonce=other), nonce=other))
    assert failed_names(entry)[0] == "kbs.nonce"
    assert "binding.report_data" in failed_names(entry)  # bound to the foreign nonce


def test_expired_session_is_a_logged_denial(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    s.clock.now += 301
    entry = _denial(s, guest.attest())
    assert failed_names(entry) == ["kbs.session"]
    assert "expired" in entry["failed"][0]["detail"]


def test_nonce_reuse_is_refused_even_with_valid_evidence(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    entry = _denial(s, guest.attest())  # same session, same nonce, evidence verified again
    assert failed_names(entry) == ["kbs.nonce"]
    assert "already used" in entry["failed"][0]["detail"]
    assert entry["requester"]["claims"] == {"tee": "sample", "gpu.count": 0}


def test_report_data_not_binding_the_tee_pubkey_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest, other = Guest(s.client), Guest(s.client)
    guest.auth()
    evidence = guest.sample_evidence(pubkey=other.public)  # bound to another key
    entry = _denial(s, guest.attest(evidence))
    assert failed_names(entry) == ["binding.report_data"]


def test_a_different_pubkey_at_resource_time_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    alice = Guest(s.client)
    alice.auth()
    assert alice.attest().status_code == 200
    mallory = Guest(TestClient(s.client.app))
    mallory.auth()
    token = mallory.attest().json()["token"]
    # Alice's cookie (her attested key) with Mallory's token (another key).
    entry = _denial(s, alice.fetch(token=token))
    assert failed_names(entry) == ["kbs.tee_pubkey"]


def test_sample_evidence_under_a_strict_policy_is_refused(tmp_path):
    s = make_setup(tmp_path, STRICT_POLICY)
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    entry = _denial(s, guest.fetch())
    assert failed_names(entry) == ["policy.insecure_sample", "policy.conditions"]
    assert entry["model"]["key_id"] == s.broker.config.resources[0].key_id


def test_gpus_missing_when_the_policy_requires_them_is_refused(tmp_path):
    policy = {"version": "1.0", "allow_insecure_sample": True,
              "anyOf": [{"allOf": [{"claim": "gpu.count", "gte": 1}]}]}
    s = make_setup(tmp_path, policy)
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    entry = _denial(s, guest.fetch())
    assert failed_names(entry) == ["policy.conditions"]
    assert "gpu.count gte 1" in entry["failed"][0]["detail"]


def test_gpu_evidence_whose_nonce_is_not_bound_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    # Real H100 evidence (NEAR AI capture): its SPDM nonce is not this session's device hash.
    additional = json.dumps({"nvidia": json.loads(NEAR_GPU.read_text())})
    entry = _denial(s, guest.attest(additional=additional))
    names = failed_names(entry)
    assert names and all(n.startswith("gpu.nonce[") for n in names)
    assert entry["requester"]["claims"]["gpu.count"] == 0


def test_forged_token_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    forger = TokenSigner(s.broker.tokens.issuer, clock=s.clock)
    guest = Guest(TestClient(s.client.app))
    forged = forger.issue({"tee": "sample", "claims": {"tee": "sample"},
                           "tee-pubkey": guest.public})
    entry = _denial(s, guest.fetch(token=forged))
    assert failed_names(entry) == ["kbs.token"]
    assert entry["requester"]["tee"] is None  # nothing of a forged token is believed


def test_expired_token_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    token = guest.attest().json()["token"]
    s.clock.now += 301
    entry = _denial(s, Guest(TestClient(s.client.app)).fetch(token=token))
    assert failed_names(entry) == ["kbs.token"]
    assert "expired" in entry["failed"][0]["detail"]


def test_no_token_at_all_is_a_logged_denial(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    entry = _denial(s, Guest(s.client).fetch())
    assert failed_names(entry) == ["kbs.token"]


def test_path_tricks_are_logged_denials_and_never_another_resource(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    token = guest.attest().json()["token"]
    for path in ("acme/model-key/llama-v3%2F..%2Fx", "acme/model-key%2Fllama-v3/x",
                 "acme/model-key/%2E%2E", "acme/model-key/llama-v3/extra",
                 "acme//llama-v3", "acme/model-key/llama-v3?x=1"):
        entry = _denial(s, guest.fetch(path, token=token), status=404)
        assert failed_names(entry) == ["kbs.resource_path"], path
        assert entry["model"]["key_id"] is None


def test_unknown_endpoint_is_404_invalid_request_path(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    r = s.client.get("/kbs/v0/nothing")
    assert r.status_code == 404
    assert r.json()["type"].endswith("/InvalidRequestPath")


def test_log_unavailable_means_503_and_nothing_released(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    s.log.engine.dispose()
    (tmp_path / "data" / "teelog.db").unlink()  # the log's database is gone
    r = guest.fetch()
    assert r.status_code == 503
    assert r.json()["type"].endswith("/LogUnavailable")
    assert "ciphertext" not in r.text and "Teelog-Entry-Index" not in r.headers


def test_wrong_protocol_version_and_tee_are_refused_at_auth(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    r = s.client.post("/kbs/v0/auth", json={"version": "0.1.1", "tee": "sample"})
    assert r.status_code == 401 and "0.4.0" in r.json()["detail"]
    r = s.client.post("/kbs/v0/auth", json={"version": "0.4.0", "tee": "snp"})
    assert r.status_code == 401 and "snp" in r.json()["detail"]
    r = s.client.post("/kbs/v0/auth", content=b"{not json")
    assert r.status_code == 401 and r.json()["type"].endswith("/SerdeError")


def test_a_weak_tee_pubkey_is_a_logged_denial_at_attest(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client, rsa=True)
    guest.public = {**guest.public, "alg": "RSA1_5"}
    guest.auth()
    entry = _denial(s, guest.attest())
    assert failed_names(entry) == ["kbs.tee_pubkey"]
    assert entry["requester"]["tee_pubkey_thumbprint"] is None


def test_init_data_is_refused_not_ignored(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    body = {
        "init-data": {"format": "toml", "body": "x = 1"},
        "runtime-data": {"nonce": guest.nonce, "tee-pubkey": guest.public},
        "tee-evidence": {"primary_evidence": guest.sample_evidence(), "additional_evidence": ""},
    }
    entry = _denial(s, s.client.post("/kbs/v0/attest", content=json.dumps(body)))
    assert failed_names(entry) == ["kbs.init_data"]


def test_bearer_token_alone_releases_to_the_attested_key(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    token = guest.attest().json()["token"]
    r = Guest(TestClient(s.client.app)).fetch(token=token)  # no cookie
    assert r.status_code == 200
    jwe_token = jwe.JWE()
    jwe_token.deserialize(compact_of(r.json()), key=guest.private)
    assert jwe_token.payload == s.key


def test_additional_evidence_that_is_not_json_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    entry = _denial(s, guest.attest(additional="{not json"))
    assert failed_names(entry) == ["evidence.additional"]


def test_sample_report_data_of_the_wrong_size_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    primary = {"svn": "1", "report_data": base64.b64encode(b"\x00" * 48).decode()}
    entry = _denial(s, guest.attest(primary))
    assert failed_names(entry) == ["binding.report_data"]
    assert "48 bytes" in entry["failed"][0]["detail"]


def test_a_key_file_opened_up_after_start_is_not_released(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    assert guest.attest().status_code == 200
    (tmp_path / "model.key").chmod(0o644)
    entry = _denial(s, guest.fetch())
    assert failed_names(entry) == ["kbs.release"] and "0644" in entry["failed"][0]["detail"]


def test_an_oversized_body_is_refused(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    r = s.client.post("/kbs/v0/auth", content=b" " * (8 * 2**20 + 1))
    assert r.status_code == 401 and r.json()["type"].endswith("/SerdeError")


def test_hostile_runtime_data_is_refused_cleanly(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.auth()
    evidence = guest.sample_evidence()  # the hostile members have no RFC 8785 form to bind
    r = guest.attest(evidence, pubkey={**guest.public, "big": 2**60})
    assert r.status_code == 401 and r.json()["type"].endswith("/SerdeError"), r.text
    deep = {**guest.public, "deep": json.loads("[" * 900 + "]" * 900)}
    entry = _denial(s, guest.attest(evidence, pubkey=deep))  # canonicalisable, not bound
    assert "binding.report_data" in failed_names(entry)
    r = s.client.post("/kbs/v0/attest", content=b"[" * 100_000)
    assert r.status_code == 401 and r.json()["type"].endswith("/SerdeError")


def test_the_token_carries_only_the_public_key_members(tmp_path):
    s = make_setup(tmp_path, SAMPLE_POLICY)
    guest = Guest(s.client)
    guest.public = {**guest.public, "kid": "x" * 1000}
    guest.auth()
    token = guest.attest().json()["token"]
    claims = s.broker.tokens.verify(token)
    assert set(claims["tee-pubkey"]) == {"kty", "crv", "x", "y", "alg"}
    assert guest.fetch(token=token).status_code == 200
