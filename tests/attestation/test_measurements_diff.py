"""Measurements JSON and the one definition of "measurements changed"."""

from __future__ import annotations

from attestation_data import AT_NEAR_MODEL, NEAR_NONCE, collateral_doc, near_bundle
from teelog.attestation import GpuMeasurement, Measurements, diff_measurements, verify_report


def _real() -> Measurements:
    result = verify_report(
        near_bundle(),
        nonce=NEAR_NONCE,
        at=AT_NEAR_MODEL,
        collateral=[collateral_doc("dcapqvl_tdx_v5")],
    )
    return Measurements.from_json(result.attestations[1].measurements)


def test_json_round_trip_keeps_every_field_and_nulls():
    m = _real()
    out = m.to_json()
    assert set(out) == {
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "mr_config_id",
        "mr_seam",
        "compose_hash",
        "app_id",
        "instance_id",
        "os_image_hash",
        "key_provider",
        "tcb_status",
        "advisory_ids",
        "quote_sha256",
        "gpus",
    }
    assert Measurements.from_json(out) == m
    empty = Measurements().to_json()
    assert empty["mrtd"] is None and empty["gpus"] == [] and empty["advisory_ids"] == []


def test_same_measurements_do_not_differ_even_with_another_quote():
    m = _real()
    again = Measurements.from_json({**m.to_json(), "quote_sha256": "00" * 32})
    assert diff_measurements(m, again) == []


def test_each_changed_field_is_reported():
    m = _real()
    changed = Measurements.from_json(
        {
            **m.to_json(),
            "compose_hash": "11" * 32,
            "rtmr3": "22" * 48,
            "tcb_status": "OutOfDate",
            "advisory_ids": ["INTEL-SA-01111"],
        }
    )
    fields = {c.field for c in diff_measurements(m, changed)}
    assert fields == {"compose_hash", "rtmr3", "tcb_status", "advisory_ids"}


def test_gpu_driver_change_and_removed_gpu_are_changes():
    m = _real()
    gpus = list(m.gpus)
    gpus[2] = GpuMeasurement(2, gpus[2].arch, "580.1", gpus[2].vbios_version)
    changed = Measurements.from_json({**m.to_json(), "gpus": [g.to_json() for g in gpus[:-1]]})
    changes = {c.field: c for c in diff_measurements(m, changed)}
    assert changes["gpus[2].driver_version"].new == "580.1"
    assert changes["gpus[7]"].new is None
    assert changes["gpus[2].driver_version"].to_json()["old"] == "570.172.08"


def test_advisories_compare_as_sets_and_hex_case_is_ignored():
    a = Measurements(mrtd="AB" * 48, advisory_ids=("X", "Y"))
    b = Measurements(mrtd="ab" * 48, advisory_ids=("Y", "X", "X"))
    assert diff_measurements(a, b) == []
