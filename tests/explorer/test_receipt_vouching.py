"""A receipt page never says more than the log proves (docs/entries.md, ``attestation_index``).

The log holds the real NEAR AI bundle and variants of it whose logged verdict names the test
key: in the model attestation (status ``verified``) or in the gateway attestation (a status
that does not vouch). Receipts signed with the test key are decided by
``attestation.receipt.decide_signer``, as the collector decides them.
"""

from __future__ import annotations

import re

import pytest
from explorer_fixtures import (
    append_attestation,
    key_address,
    make_receipt,
    verified_bundle,
)
from teelog.attestation.receipt import SignerRecord, signer_key
from teelog.entries.receipt import encode_receipt
from teelog.explorer import create_app

ADDRESS = key_address()


def _naming_test_key(log, role: str) -> tuple[int, str]:
    """Append the bundle with the test key as the ``role`` attestation's signing address;
    return its index and that attestation's logged status."""
    raw, _doc, result = verified_bundle()
    status: dict[str, str] = {}

    def rename(entry):
        for att in entry["attestations"]:
            if att["role"] == role:
                att["signing_address"] = ADDRESS
                status["of"] = att["status"]

    index = append_attestation(log, raw=raw, result=result, mutate=rename)
    return index, status["of"]


def _vouching_section(html: str) -> str:
    m = re.search(r'<section class="vouching">(.*?)</section>', html, re.S)
    assert m, "receipt page has no vouching section"
    return m.group(1)


def _page_and_api(fresh, receipt: dict) -> tuple[str, dict]:
    index = fresh.log.append(encode_receipt(receipt))
    client = create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0}).test_client()
    html = client.get(f"/entries/{index}").get_data(as_text=True)
    return _vouching_section(html), client.get(f"/api/v1/entries/{index}").get_json()


def test_a_receipt_vouched_for_by_a_verified_attestation_links_it(fresh):
    vouching, status = _naming_test_key(fresh.log, "model")
    assert status == "verified"
    record = SignerRecord("verified", vouching, "verified", vouching)
    receipt = make_receipt(
        7, attestation_index=vouching, named_index=vouching,
        signers={signer_key(ADDRESS): record},
    )
    assert receipt["status"] == "verified"
    section, api = _page_and_api(fresh, receipt)
    assert "is named by a" in section
    assert f'href="/entries/{vouching}"' in section
    assert 'class="badge ok">verified<' in section
    assert "No verified attestation vouches" not in section
    assert api["vouched_by"]["index"] == vouching
    assert api["vouched_by"]["status"] == "verified" and api["vouched_by"]["vouches"] is True
    assert api["named_by"] is None


def test_a_receipt_named_only_by_an_attestation_that_did_not_verify_says_so(fresh):
    named, status = _naming_test_key(fresh.log, "gateway")
    assert status in ("unverifiable", "failed")
    record = SignerRecord(status, named)
    receipt = make_receipt(8, named_index=named, signers={signer_key(ADDRESS): record})
    assert receipt["attestation_index"] is None
    section, api = _page_and_api(fresh, receipt)
    assert "No verified attestation vouches for this key" in section
    assert f'href="/entries/{named}"' in section
    assert f">{status}<" in section
    assert "is named by a" not in section
    assert api["vouched_by"] is None
    assert (api["named_by"]["index"], api["named_by"]["status"]) == (named, status)
    assert api["named_by"]["vouches"] is False


@pytest.mark.parametrize("role", ["gateway", "model"])
def test_an_attestation_index_the_log_does_not_bear_out_is_not_shown_as_vouching(fresh, role):
    """An entry whose ``attestation_index`` points at an attestation that did not verify (as
    entries before this rule did), or at one that does not name the signer, vouches nothing."""
    if role == "gateway":
        pointed, status = _naming_test_key(fresh.log, "gateway")
    else:
        pointed, status = fresh.attestation_indexes[0], None  # names the real model key only
    receipt = make_receipt(9, attestation_index=pointed)
    section, api = _page_and_api(fresh, receipt)
    assert "is named by a" not in section
    assert api["vouched_by"] is None
    if status is None:
        assert "No attestation in the log names this key" in section
        assert api["named_by"] is None
    else:
        assert "No verified attestation vouches for this key" in section
        assert f'href="/entries/{pointed}"' in section
        assert api["named_by"]["index"] == pointed


def test_the_receipt_lookup_says_who_vouched_as_the_page_does(fresh):
    vouching, _status = _naming_test_key(fresh.log, "model")
    record = SignerRecord("verified", vouching, "verified", vouching)
    receipt = make_receipt(
        10, attestation_index=vouching, named_index=vouching,
        signers={signer_key(ADDRESS): record},
    )
    _section, api = _page_and_api(fresh, receipt)
    client = create_app(fresh.data_dir, log=fresh.log, config={"index_interval": 0}).test_client()
    found = client.get(f"/api/v1/receipts?chat_id={receipt['chat_id']}").get_json()
    assert found["vouched_by"] == api["vouched_by"] and found["vouched_by"]["index"] == vouching
    assert found["named_by"] is None
