"""Fixtures for the collector's tests (helpers live in ``collector_fakes``)."""

from collector_fakes import (  # noqa: F401  (pytest fixtures, found by name)
    collateral,
    data_dir,
    demo_upstream,
    fake_node,
    log,
    receiver,
    teelog_node,
)
