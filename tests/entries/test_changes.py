"""Change detection between a node's consecutive attestations."""

from __future__ import annotations

import copy

from teelog.entries.changes import compare_summaries

MEASURED = {
    "mrtd": "aa" * 48, "rtmr0": "00" * 48, "rtmr1": "01" * 48, "rtmr2": "02" * 48,
    "rtmr3": "03" * 48, "mr_config_id": "01" + "cc" * 32 + "00" * 15, "mr_seam": None,
    "compose_hash": "cc" * 32, "app_id": "dd" * 20, "instance_id": "ee" * 20,
    "os_image_hash": "ff" * 32, "key_provider": "kms", "tcb_status": "UpToDate",
    "advisory_ids": [], "quote_sha256": "12" * 32,
    "gpus": [{"index": 0, "arch": "HOPPER", "driver_version": "570.172.08",
              "vbios_version": "96.00.cf.00.02"}],
}


def _summary(**over):
    item = {"role": "model", "model": "openai/gpt-oss-120b", "signing_address": "0xAbC",
            "signing_algo": "ecdsa", "status": "verified", "measurements": copy.deepcopy(MEASURED)}
    gateway = {"role": "gateway", "model": None, "signing_address": "0x111",
               "signing_algo": "ecdsa", "status": "warning",
               "measurements": copy.deepcopy(MEASURED)}
    for key, value in over.items():
        if key in item:
            item[key] = value
        else:
            item["measurements"][key] = value
    return {"status": "warning", "attestations": [gateway, item]}


def test_same_measurements_with_a_new_quote_are_no_change():
    assert compare_summaries(_summary(), _summary(quote_sha256="34" * 32)) == []


def test_compose_hash_change_is_named_with_both_values():
    (change,) = compare_summaries(_summary(), _summary(compose_hash="99" * 32))
    assert change.field == "model[openai/gpt-oss-120b].compose_hash"
    assert (change.old, change.new) == ("cc" * 32, "99" * 32)


def test_tcb_downgrade_and_advisories_are_changes():
    changes = compare_summaries(
        _summary(), _summary(tcb_status="OutOfDate", advisory_ids=["INTEL-SA-01036"])
    )
    assert {c.field for c in changes} == {
        "model[openai/gpt-oss-120b].tcb_status", "model[openai/gpt-oss-120b].advisory_ids",
    }


def test_gpu_driver_change_is_a_change():
    gpus = [dict(MEASURED["gpus"][0], driver_version="575.0")]
    (change,) = compare_summaries(_summary(), _summary(gpus=gpus))
    assert change.field == "model[openai/gpt-oss-120b].gpus[0].driver_version"


def test_signing_key_compares_case_insensitively():
    assert compare_summaries(_summary(), _summary(signing_address="0xabc")) == []
    (change,) = compare_summaries(_summary(), _summary(signing_address="0xdef"))
    assert change.field == "model[openai/gpt-oss-120b].signing_address"


def test_only_a_verdict_turning_worse_is_a_change():
    (change,) = compare_summaries(_summary(), _summary(status="failed"))
    assert (change.field, change.old, change.new) == (
        "model[openai/gpt-oss-120b].status", "verified", "failed",
    )
    assert compare_summaries(_summary(status="failed"), _summary()) == []


def test_attestations_appearing_and_disappearing_are_changes():
    old, new = _summary(), _summary()
    new["attestations"].pop()
    (gone,) = compare_summaries(old, new)
    assert gone.field == "model[openai/gpt-oss-120b]"
    assert gone.new is None and gone.old["signing_address"] == "0xAbC"
    (came,) = compare_summaries(new, old)
    assert came.old is None


def test_measurements_lost_is_a_change():
    (change,) = compare_summaries(_summary(), _summary(measurements=None))
    assert change.field == "model[openai/gpt-oss-120b].measurements"
