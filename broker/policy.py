"""The broker's name for the release policy language, whose one home is
:mod:`teelog.entries.release_policy` (the monitor checks releases with it too, and may not
import the broker: docs/architecture.md). Nothing is defined here."""

from teelog.entries.release_policy import Policy, PolicyError, load_policy, parse_policy

__all__ = ["Policy", "PolicyError", "load_policy", "parse_policy"]
