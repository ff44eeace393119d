"""Fixtures of the attestation tests; the data and helpers they share are in attestation_data.py
(a module of its own name, so that test modules import it unambiguously)."""

from __future__ import annotations

import pytest
from attestation_data import ALL_COLLATERAL_STEMS, collateral_doc
from teelog.attestation.collateral import CollateralDoc


@pytest.fixture(scope="session")
def all_collateral() -> list[CollateralDoc]:
    return [collateral_doc(stem) for stem in ALL_COLLATERAL_STEMS]
