"""The policy language: grammar errors, conditions, absent claims, and the fixed refusals."""

from __future__ import annotations

import json

import pytest
from teelog.entries.release_policy import PolicyError, load_policy, parse_policy

MRTD = "ab" * 48


def _policy(*conditions, insecure=False, more=()):
    return parse_policy({"version": "1.0", "allow_insecure_sample": insecure,
                         "anyOf": [{"allOf": list(conditions)}, *more]})


def _failed(policy, claims):
    return [c.name for c in policy.evaluate(claims) if c.status == "fail"]


def test_equals_in_and_gte_hold_on_verified_claims():
    policy = _policy({"claim": "tdx.mrtd", "equals": MRTD},
                     {"claim": "tcb_status", "in": ["UpToDate", "SWHardeningNeeded"]},
                     {"claim": "gpu.count", "gte": 8})
    good = {"tee": "tdx", "tdx.mrtd": MRTD, "tcb_status": "UpToDate", "gpu.count": 8}
    assert _failed(policy, good) == []
    assert _failed(policy, {**good, "tdx.mrtd": "cd" * 48}) == ["policy.conditions"]
    assert _failed(policy, {**good, "tcb_status": "OutOfDate"}) == ["policy.conditions"]
    assert _failed(policy, {**good, "gpu.count": 7}) == ["policy.conditions"]


def test_a_condition_on_an_absent_claim_is_false():
    policy = _policy({"claim": "compose_hash", "equals": "00" * 32})
    checks = policy.evaluate({"tee": "tdx"})
    assert checks[-1].status == "fail" and "claim absent" in checks[-1].detail


def test_any_of_allows_when_one_group_holds():
    policy = _policy({"claim": "tee", "equals": "tdx"},
                     more=[{"allOf": [{"claim": "app_id", "equals": "aa"}]}])
    assert _failed(policy, {"tee": "other", "app_id": "aa"}) == []
    assert _failed(policy, {"tee": "other", "app_id": "bb"}) == ["policy.conditions"]


def test_list_claims_must_hold_for_every_gpu():
    policy = _policy({"claim": "gpu.driver", "in": ["550.54"]})
    assert _failed(policy, {"gpu.driver": ["550.54", "550.54"]}) == []
    assert _failed(policy, {"gpu.driver": ["550.54", "535.1"]}) == ["policy.conditions"]


def test_a_debug_td_is_refused_whatever_the_conditions_say():
    policy = _policy({"claim": "tee", "equals": "tdx"})
    assert _failed(policy, {"tee": "tdx", "debug": True}) == ["policy.debug"]
    assert _failed(policy, {"tee": "tdx", "debug": False}) == []


def test_sample_evidence_needs_allow_insecure_sample():
    strict = _policy({"claim": "tee", "equals": "sample"})
    assert _failed(strict, {"tee": "sample"}) == ["policy.insecure_sample"]
    lax = _policy({"claim": "tee", "equals": "sample"}, insecure=True)
    assert _failed(lax, {"tee": "sample"}) == []


def test_booleans_and_numbers_do_not_mix():
    policy = _policy({"claim": "debug", "equals": 0})
    assert _failed(policy, {"debug": False}) == ["policy.conditions"]
    gte = _policy({"claim": "gpu.driver", "gte": 500})
    assert _failed(gte, {"gpu.driver": ["550.54"]}) == ["policy.conditions"]


@pytest.mark.parametrize(("doc", "where"), [
    ({"version": "2.0", "anyOf": [{"allOf": [{"claim": "tee", "equals": "tdx"}]}]}, "version"),
    ({"version": "1.0", "anyOf": []}, "anyOf"),
    ({"version": "1.0", "anyOf": [{"allOf": [{"claim": "mrtd", "equals": "x"}]}]},
     "anyOf[0].allOf[0].claim"),
    ({"version": "1.0", "anyOf": [{"allOf": [{"claim": "tee", "equals": "a", "in": ["b"]}]}]},
     "anyOf[0].allOf[0]"),
    ({"version": "1.0", "anyOf": [{"allOf": [{"claim": "gpu.count", "gte": "8"}]}]},
     "anyOf[0].allOf[0].gte"),
    ({"version": "1.0", "allow_insecure_sample": "yes",
      "anyOf": [{"allOf": [{"claim": "tee", "equals": "tdx"}]}]}, "allow_insecure_sample"),
    ({"version": "1.0", "anyof": []}, "anyof"),
])
def test_grammar_errors_name_the_member(doc, where):
    with pytest.raises(PolicyError) as info:
        parse_policy(doc)
    assert str(info.value).startswith(where)


def test_the_digest_ignores_formatting_and_follows_content(tmp_path):
    doc = {"version": "1.0", "anyOf": [{"allOf": [{"claim": "tee", "equals": "tdx"}]}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps(doc, indent=4))
    assert load_policy(tmp_path / "a.json").sha256 == load_policy(tmp_path / "b.json").sha256
    doc["anyOf"][0]["allOf"][0]["equals"] = "sample"
    assert parse_policy(doc).sha256 != load_policy(tmp_path / "a.json").sha256
