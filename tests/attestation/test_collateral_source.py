"""Collateral: loading, canonical digest, freshness, FMSPC matching, PCCS fetch and cache."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from attestation_data import (
    AT_NEAR_MODEL,
    AT_V4_UPTODATE,
    AT_V5,
    NEAR_NONCE,
    TDX,
    collateral_doc,
    near_bundle,
    quote_bytes,
)
from fake_pccs import FakePccs, collateral_json
from teelog.attestation.collateral import Collateral, load_collateral
from teelog.attestation.errors import CollateralError
from teelog.attestation.quote import parse_quote
from teelog.attestation.report import verify_quote, verify_report
from teelog.attestation.tdx import as_datetime


def test_freshness_dates_come_from_tcb_info_qe_identity_and_crls():
    f = collateral_doc("dcapqvl_tdx_v4_uptodate").freshness
    assert f.tcb_info_issue_date == datetime(2025, 6, 19, 10, 16, 3, tzinfo=UTC)
    assert f.qe_identity_issue_date == datetime(2025, 6, 19, 10, 32, 27, tzinfo=UTC)
    assert f.tcb_evaluation_data_number == 17
    # The README's window: 2025-06-19T10:32:27Z .. 2025-07-19T10:00:35Z.
    assert f.not_before == datetime(2025, 6, 19, 10, 32, 27, tzinfo=UTC)
    assert f.not_after == datetime(2025, 7, 19, 10, 0, 35, tzinfo=UTC)
    assert f.problem_at(as_datetime(AT_V4_UPTODATE)) is None
    assert "PCK CRL expired" in f.problem_at(as_datetime(1752919236))
    assert "not yet valid" in f.problem_at(as_datetime(1735689600))
    assert set(f.to_json()) >= {"tcb_info_next_update", "pck_crl_this_update", "not_after"}


def test_pck_certificate_chain_is_stripped_and_the_digest_is_stable():
    raw = json.loads((TDX / "dcapqvl_tdx_v4_uptodate.collateral.json").read_text())
    plain = load_collateral(raw)
    with_chain = load_collateral({**raw, "pck_certificate_chain": "-----BEGIN CERTIFICATE-----"})
    assert b"pck_certificate_chain" not in with_chain.canonical
    assert with_chain.sha256 == plain.sha256
    upper = {**raw, "pck_crl": raw["pck_crl"].upper()}
    assert load_collateral(upper).sha256 == plain.sha256


def test_integer_array_byte_fields_are_accepted():
    raw = json.loads((TDX / "dcapqvl_tdx_v4_uptodate.collateral.json").read_text())
    arrays = {**raw, "root_ca_crl": list(bytes.fromhex(raw["root_ca_crl"]))}
    assert load_collateral(arrays).sha256 == load_collateral(raw).sha256


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: "not json", "not JSON"),
        (lambda c: [], "must be an object"),
        (lambda c: {k: v for k, v in c.items() if k != "tcb_info"}, "lacks tcb_info"),
        (lambda c: {**c, "pck_crl": "zz"}, "hex"),
        (lambda c: {**c, "pck_crl": "00ff"}, "pck_crl"),
        (lambda c: {**c, "tcb_info": "{"}, "tcb_info"),
        (lambda c: {**c, "root_ca_crl": [1, 300]}, "non-byte"),
    ],
)
def test_malformed_collateral_raises_collateral_error(mutate, message):
    raw = json.loads((TDX / "dcapqvl_tdx_v4_uptodate.collateral.json").read_text())
    bad = mutate(raw)
    with pytest.raises(CollateralError, match=message):
        load_collateral(
            bad if isinstance(bad, dict) else json.dumps(bad) if bad != "not json" else bad
        )


def test_several_files_are_matched_by_fmspc(all_collateral):
    source = Collateral(all_collateral)
    for quote, at, fmspc in [
        ("dcapqvl_tdx_v4_uptodate.quote.bin", AT_V4_UPTODATE, "b0c06f000000"),
        ("dcapqvl_tdx_v5.quote.bin", AT_V5, "90c06f000000"),
        ("dcapqvl_sgx_v3.quote.bin", AT_V4_UPTODATE, "00a067110000"),
    ]:
        doc = source.for_quote(parse_quote(quote_bytes(quote)), as_datetime(at))
        assert doc is not None and doc.fmspc == fmspc


def test_of_two_documents_for_one_fmspc_the_one_valid_at_the_time_wins(all_collateral):
    source = Collateral(all_collateral)
    quote = parse_quote(quote_bytes("nearmpc_2026_tdx_v4.quote.bin"))
    assert source.for_quote(quote, as_datetime(AT_V4_UPTODATE)).sha256 == (
        collateral_doc("dcapqvl_tdx_v4_uptodate").sha256
    )
    assert source.for_quote(quote, as_datetime(1787894484)).sha256 == (
        collateral_doc("nearmpc_2026_tdx_v4").sha256
    )


def test_from_files_names_the_bad_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(CollateralError, match=r"bad\.json"):
        Collateral.from_files([bad])
    with pytest.raises(CollateralError, match="cannot read"):
        Collateral.from_files([tmp_path / "missing.json"])


def test_collateral_is_fetched_from_a_pccs_and_cached_by_fmspc(tmp_path):
    doc = collateral_doc("dcapqvl_tdx_v4_uptodate")
    quote = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    with FakePccs(collateral_json(doc)) as pccs:
        source = Collateral(pccs_url=pccs.url, cache_dir=tmp_path, timeout=10)
        fetched = source.for_quote(quote, as_datetime(AT_V4_UPTODATE))
        assert fetched.sha256 == doc.sha256
        assert any("/tdx/certification/v4/tcb?fmspc=B0C06F000000" in r for r in pccs.requests)
    cached = tmp_path / "tdx-b0c06f000000.json"
    assert cached.read_bytes() == doc.canonical
    # A new source finds it in the cache without any network.
    offline = Collateral(cache_dir=tmp_path)
    assert offline.for_quote(quote, as_datetime(AT_V4_UPTODATE)).sha256 == doc.sha256
    result = verify_quote(quote.raw, at=AT_V4_UPTODATE, collateral=offline)
    assert result.status == "verified"
    assert result.collateral_used == {"b0c06f000000": doc.canonical}


def test_httpx_fallback_fetches_the_same_collateral(monkeypatch):
    import dcap_qvl

    async def broken(url, raw):
        raise RuntimeError("dcap-qvl transport unavailable")

    monkeypatch.setattr(dcap_qvl, "get_collateral", broken)
    doc = collateral_doc("dcapqvl_tdx_v4_uptodate")
    quote = parse_quote(quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"))
    with FakePccs(collateral_json(doc)) as pccs:
        assert Collateral(pccs_url=pccs.url).fetch(quote).sha256 == doc.sha256


def test_a_failing_pccs_gives_a_skip_with_the_reason():
    doc = collateral_doc("dcapqvl_tdx_v4_uptodate")
    with FakePccs(collateral_json(doc)) as pccs:
        pccs.fail_all = True
        result = verify_quote(
            quote_bytes("dcapqvl_tdx_v4_uptodate.quote.bin"),
            at=AT_V4_UPTODATE,
            collateral=Collateral(pccs_url=pccs.url, timeout=5),
        )
    checks = {c.name: c for c in result.attestations[0].checks}
    assert checks["tdx.collateral"].status == "skip"
    assert "503" in checks["tdx.collateral"].detail
    assert result.status == "unverifiable"


def test_a_damaged_cache_entry_is_ignored(tmp_path):
    (tmp_path / "tdx-b0c06f000000.json").write_text("{broken")
    assert Collateral(cache_dir=tmp_path).documents() == []


# Why collateral was not used (issue 9 §2): the reason names the case.


def _choose(source: Collateral, quote_name: str, at: int):
    return source.choose(parse_quote(quote_bytes(quote_name)), as_datetime(at))


def test_no_collateral_for_the_fmspc_says_so():
    source = Collateral([collateral_doc("dcapqvl_tdx_v4_uptodate")])
    choice = _choose(source, "dcapqvl_tdx_v5.quote.bin", AT_V5)
    assert choice.doc is None and choice.cited == ()
    assert choice.reason == "no collateral for TDX FMSPC 90c06f000000"


def test_collateral_archived_for_other_times_lists_every_window():
    source = Collateral([collateral_doc("nearmpc_2026_tdx_v4"),
                         collateral_doc("dcapqvl_tdx_v4_uptodate")])
    choice = _choose(source, "dcapqvl_tdx_v4_uptodate.quote.bin", 1760000000)
    assert choice.doc is None and len(choice.cited) == 2
    assert choice.reason == (
        "collateral for TDX FMSPC b0c06f000000 is archived only for the [issue, next update] "
        "windows [2025-06-19T10:32:27Z, 2025-07-19T10:00:35Z], [2026-08-13T10:45:38Z, "
        "2026-09-11T23:57:11Z], which do not cover the verification time 2025-10-09T08:53:20Z"
    )
    # Inside one of the windows, that document is used.
    assert _choose(source, "dcapqvl_tdx_v4_uptodate.quote.bin", AT_V4_UPTODATE).doc is not None


def test_an_expired_crl_is_named_when_tcb_info_and_qe_identity_still_cover_the_time():
    source = Collateral([collateral_doc("dcapqvl_tdx_v4_uptodate")])
    choice = _choose(source, "dcapqvl_tdx_v4_uptodate.quote.bin", 1752919236)  # window end + 1 s
    assert choice.doc is None
    assert choice.reason == (
        "collateral for TDX FMSPC b0c06f000000 covers 2025-07-19T10:00:36Z with its TCB info "
        "and QE identity, but its PCK CRL (this update 2025-06-19T10:00:35Z, next update "
        "2025-07-19T10:00:35Z) is expired at that time, so revocations cannot be checked"
    )


def test_a_failed_fetch_is_part_of_the_reason_not_an_exception():
    source = Collateral([collateral_doc("dcapqvl_tdx_v4_uptodate")],
                        pccs_url="http://127.0.0.1:9", timeout=5)
    choice = _choose(source, "dcapqvl_tdx_v4_uptodate.quote.bin", 1760000000)
    assert choice.doc is None
    assert choice.reason.startswith(
        "collateral for TDX FMSPC b0c06f000000 is archived only for the [issue, next update] "
        "window [2025-06-19T10:32:27Z, 2025-07-19T10:00:35Z]"
    )
    assert "could not fetch collateral for FMSPC b0c06f000000 from http://127.0.0.1:9" in (
        choice.reason
    )


def test_the_reason_is_the_skip_detail_and_the_cited_collateral_reproduces_it():
    docs = [collateral_doc("dcapqvl_tdx_v5"), collateral_doc("nearmpc_2026_tdx_v4")]
    result = verify_report(near_bundle(), nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=docs)
    gateway = {c.name: c for c in result.attestations[0].checks}
    assert gateway["tdx.collateral"].status == gateway["tdx.tcb"].status == "skip"
    assert "archived only for the [issue, next update] window [2026-08-13T10:45:38Z" in (
        gateway["tdx.collateral"].detail
    )
    assert set(result.collateral_used) == {"90c06f000000"}
    assert set(result.collateral_cited) == {docs[1].sha256}
    # Re-verifying with exactly the stored documents gives the same verdicts, reason included.
    stored = [load_collateral(b) for b in result.collateral_documents().values()]
    again = verify_report(near_bundle(), nonce=NEAR_NONCE, at=AT_NEAR_MODEL, collateral=stored)
    assert again.to_json() == result.to_json()
