"""TDX evidence through the broker, with real quotes and Intel collateral from tests/data."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from broker_helpers import (
    DATA,
    TDX,
    TDX_NOW,
    Guest,
    entry_at,
    failed_names,
    make_setup,
)
from jwcrypto import jwe
from teelog.broker.evidence import verify_evidence
from teelog.broker.jwe import compact_of
from teelog.broker.protocol import Attestation

UPTODATE = (TDX / "dcapqvl_tdx_v4_uptodate.quote.bin").read_bytes()
UPTODATE_MRTD = ("91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
                 "de03ae6dc5f87f27428b2538873118b7")  # tests/data/tdx/README.md
# OutOfDate with advisories at this time with the v5 collateral (tests/data/tdx/README.md).
OUTDATED = base64.b64decode(json.loads(
    (DATA / "reports" / "privatemlsdk_e2e_quote_sample_2025-01.json").read_text())["intel_quote"])
OUTDATED_NOW = 1772707803.0
TD_ATTRIBUTES_OFFSET = 48 + 16 + 48 + 48 + 8  # header, TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAMATTR


def _primary(quote: bytes) -> dict:
    return {"quote": base64.b64encode(quote).decode(), "cc_eventlog": None}


def _tdx_setup(tmp_path, policy, now=TDX_NOW, collateral="dcapqvl_tdx_v4_uptodate"):
    return make_setup(tmp_path, policy, now=now, collateral=[f"{collateral}.collateral.json"])


ALLOW_MRTD = {
    "version": "1.0", "anyOf": [{"allOf": [{"claim": "tdx.mrtd", "in": [UPTODATE_MRTD]}]}]
}


def test_a_real_tdx_quote_is_refused_for_its_binding_not_its_format(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD)
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    r = guest.attest(_primary(UPTODATE))
    assert r.status_code == 401
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert failed_names(entry) == ["binding.report_data"]
    claims = entry["requester"]["claims"]
    assert claims["tdx.mrtd"] == UPTODATE_MRTD and claims["tcb_status"] == "UpToDate"
    assert claims["debug"] is False
    # The quote's SHA-256 is over the quote its length fields delimit: the file's 70 bytes of
    # zero padding after the signature data are not part of it (attestation/quote.py).
    assert UPTODATE[4936:] == bytes(70)
    assert entry["requester"]["quote_sha256"] == hashlib.sha256(UPTODATE[:4936]).hexdigest() == (
        "f1c8503301126c30ab9863df145a8c328f0834a59817e77abc24d1db6e9fce24")


def test_a_broken_quote_signature_is_refused_and_its_registers_are_not_claims(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD)
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    broken = bytearray(UPTODATE)
    broken[184] ^= 0x01  # MRTD[0]
    r = guest.attest(_primary(bytes(broken)))
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert "tdx.quote" in failed_names(entry)
    assert "tdx.mrtd" not in entry["requester"]["claims"]


def test_a_debug_td_is_refused(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD)
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    debug = bytearray(UPTODATE)
    debug[TD_ATTRIBUTES_OFFSET] |= 0x01  # TDATTRIBUTES.DEBUG
    r = guest.attest(_primary(bytes(debug)))
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert "tdx.debug" in failed_names(entry)


def test_an_unreadable_quote_is_refused_for_its_format(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD)
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    r = guest.attest(_primary(UPTODATE[:600]))
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert failed_names(entry)[0] == "tdx.quote"
    assert "unreadable" in entry["failed"][0]["detail"]


def _verified_claims(s, guest, quote, now):
    """The claims of a real quote's verdict, as a broker token would carry them had the quote
    bound this guest's key (no real TD here can); the resource decision is the broker's."""
    att = Attestation.from_json({
        "runtime-data": {"nonce": "n", "tee-pubkey": guest.public},
        "tee-evidence": {"primary_evidence": _primary(quote), "additional_evidence": ""},
    })
    evidence = verify_evidence("tdx", att, nonce="n", at=s.broker._now(),
                               collateral=s.broker.collateral)
    assert evidence.verdict.check("tdx.quote").status == "pass"
    return s.broker.tokens.issue({
        "tee": "tdx", "claims": evidence.claims, "tee-pubkey": guest.public,
        "tee_pubkey_thumbprint": guest.private.thumbprint(), "evidence_status": "verified",
    })


def test_measurements_outside_the_policy_are_refused_and_inside_released(tmp_path):
    other = {"version": "1.0", "anyOf": [{"allOf": [{"claim": "tdx.mrtd", "in": ["00" * 48]}]}]}
    s = _tdx_setup(tmp_path, other)
    guest = Guest(s.client, tee="tdx")
    r = guest.fetch(token=_verified_claims(s, guest, UPTODATE, TDX_NOW))
    assert r.status_code == 401
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert failed_names(entry) == ["policy.conditions"]
    assert UPTODATE_MRTD in entry["failed"][0]["detail"]

    (tmp_path / "b").mkdir()
    s2 = _tdx_setup(tmp_path / "b", ALLOW_MRTD)
    guest2 = Guest(s2.client, tee="tdx")
    r = guest2.fetch(token=_verified_claims(s2, guest2, UPTODATE, TDX_NOW))
    assert r.status_code == 200, r.text
    token = jwe.JWE()
    token.deserialize(compact_of(r.json()), key=guest2.private)
    assert token.payload == s2.key


def test_tcb_below_the_policy_is_refused(tmp_path):
    policy = {"version": "1.0", "anyOf": [{"allOf": [
        {"claim": "tee", "equals": "tdx"}, {"claim": "tcb_status", "equals": "UpToDate"}]}]}
    s = _tdx_setup(tmp_path, policy, now=OUTDATED_NOW, collateral="dcapqvl_tdx_v5")
    guest = Guest(s.client, tee="tdx")
    r = guest.fetch(token=_verified_claims(s, guest, OUTDATED, OUTDATED_NOW))
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert entry["decision"] == "denied"
    assert failed_names(entry) == ["policy.conditions"]
    assert '"OutOfDate"' in entry["failed"][0]["detail"]


@pytest.mark.parametrize("quote", [b"", b"not a quote at all"])
def test_garbage_instead_of_a_quote_is_a_format_refusal(tmp_path, quote):
    s = _tdx_setup(tmp_path, ALLOW_MRTD)
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    r = guest.attest(_primary(quote))
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert failed_names(entry)[0] == "tdx.quote"


def test_the_collateral_used_is_stored_in_the_blob_store(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD)
    docs = s.broker.collateral.documents()
    assert len(docs) == 1
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    guest.attest(_primary(UPTODATE))
    assert s.log.blobs.get(docs[0].sha256) == docs[0].canonical


def test_without_collateral_a_real_quote_is_refused_for_its_unevaluated_tcb(tmp_path):
    s = make_setup(tmp_path, ALLOW_MRTD, now=TDX_NOW)
    assert s.broker.collateral.documents() == []
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    r = guest.attest(_primary(UPTODATE))
    assert r.status_code == 401
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    # The quote's signatures and PCK chain verify without collateral, so its registers are
    # claims; its TCB (and revocation) cannot be evaluated, which refuses it.
    failed = set(failed_names(entry))
    assert {"tdx.collateral", "binding.report_data"} <= failed and "tdx.quote" not in failed
    assert entry["requester"]["claims"]["tdx.mrtd"] == UPTODATE_MRTD
    assert "tcb_status" not in entry["requester"]["claims"]


NEARMPC = json.loads((DATA / "reports" / "nearmpc_public_data_2026-08.json").read_text())
NEARMPC_TCB = NEARMPC["tee_participant_info"]["Dstack"]["tcb_info"]
NEARMPC_QUOTE = (TDX / "nearmpc_2026_tdx_v4.quote.bin").read_bytes()
NEARMPC_NOW = 1787894484.0  # UpToDate with nearmpc_2026_tdx_v4.collateral.json


def _with_log(quote: bytes, log) -> dict:
    return {"quote": base64.b64encode(quote).decode(),
            "cc_eventlog": base64.b64encode(json.dumps(log).encode()).decode()}


def _nearmpc_entry(tmp_path, log):
    s = _tdx_setup(tmp_path, ALLOW_MRTD, now=NEARMPC_NOW, collateral="nearmpc_2026_tdx_v4")
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    r = guest.attest(_with_log(NEARMPC_QUOTE, log))
    return entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))


def test_a_dstack_event_log_that_replays_gives_the_identity_claims(tmp_path):
    entry = _nearmpc_entry(tmp_path, NEARMPC_TCB["event_log"])
    assert failed_names(entry) == ["binding.report_data"]
    claims = entry["requester"]["claims"]
    assert claims["compose_hash"] == NEARMPC_TCB["compose_hash"]
    app_id = next(e for e in NEARMPC_TCB["event_log"] if e["event"] == "app-id")
    assert claims["app_id"] == app_id["event_payload"]
    assert "os_image_hash" not in claims  # this dstack log has no os-image-hash event
    assert claims["tdx.rtmr3"] == NEARMPC_TCB["rtmr3"]


def test_a_tampered_event_log_is_refused_and_gives_no_identity_claims(tmp_path):
    log = json.loads(json.dumps(NEARMPC_TCB["event_log"]))
    event = next(e for e in log if e.get("event") == "compose-hash")
    event["event_payload"] = "00" * 32
    entry = _nearmpc_entry(tmp_path, log)
    assert "eventlog.rtmr" in failed_names(entry)
    assert "compose_hash" not in entry["requester"]["claims"]


def test_a_binary_ccel_is_not_replayed_and_gives_no_identity_claims(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD, now=NEARMPC_NOW, collateral="nearmpc_2026_tdx_v4")
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    primary = {"quote": base64.b64encode(NEARMPC_QUOTE).decode(),
               "cc_eventlog": base64.b64encode(b"TCG binary CCEL \x00\x01").decode()}
    entry = entry_at(s.log, int(guest.attest(primary).headers["Teelog-Entry-Index"]))
    assert failed_names(entry) == ["binding.report_data"]
    assert "compose_hash" not in entry["requester"]["claims"]


def test_an_sgx_quote_cannot_attest_a_td(tmp_path):
    s = _tdx_setup(tmp_path, ALLOW_MRTD, now=1751624924.0, collateral="dcapqvl_sgx_v3")
    guest = Guest(s.client, tee="tdx")
    guest.auth()
    r = guest.attest(_primary((TDX / "dcapqvl_sgx_v3.quote.bin").read_bytes()))
    entry = entry_at(s.log, int(r.headers["Teelog-Entry-Index"]))
    assert any(f["name"] == "binding.report_data" and "SGX" in f["detail"]
               for f in entry["failed"])
