"""The explorer's settings, from the environment (12-factor, as the Flask tutorial does).

| variable | default | meaning |
|---|---|---|
| ``TEELOG_DATA`` | — | the data directory (``--data`` wins) |
| ``TEELOG_STALE_AFTER`` | 300 | seconds after which ``/healthz`` calls the checkpoint stale (503) |
| ``TEELOG_INDEX_INTERVAL`` | 1.0 | at most one index catch-up per this many seconds of requests |
| ``TEELOG_VERIFY_MAX_BYTES`` | 2097152 | largest input the verify page accepts |
| ``TEELOG_VERIFY_RATE`` | 10 | verify-page submissions allowed per client IP per minute |
| ``TEELOG_TRUSTED_PROXIES`` | 0 | reverse proxies in front whose ``X-Forwarded-For`` is trusted |
| ``TEELOG_PCCS_URL`` | — | PCCS/PCS the verify page may fetch missing collateral from |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has an unusable value; the message names the variable."""


@dataclass(frozen=True, slots=True)
class ExplorerConfig:
    """Settings of one explorer process (see the module docstring for the variables)."""

    data_dir: Path
    stale_after: float = 300.0
    index_interval: float = 1.0
    verify_max_bytes: int = 2 * 1024 * 1024
    verify_rate: int = 10
    trusted_proxies: int = 0
    pccs_url: str | None = None

    @classmethod
    def from_env(
        cls, data_dir: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
    ) -> ExplorerConfig:
        """Settings from ``env`` (default ``os.environ``); ``data_dir`` overrides TEELOG_DATA."""
        env = os.environ if env is None else env
        directory = data_dir if data_dir is not None else env.get("TEELOG_DATA")
        if not directory:
            raise ConfigError("no data directory: pass --data DIR or set TEELOG_DATA")
        values: dict[str, Any] = {"data_dir": Path(directory)}
        if env.get("TEELOG_PCCS_URL"):
            values["pccs_url"] = env["TEELOG_PCCS_URL"]
        for name, var, conv in (
            ("stale_after", "TEELOG_STALE_AFTER", float),
            ("index_interval", "TEELOG_INDEX_INTERVAL", float),
            ("verify_max_bytes", "TEELOG_VERIFY_MAX_BYTES", int),
            ("verify_rate", "TEELOG_VERIFY_RATE", int),
            ("trusted_proxies", "TEELOG_TRUSTED_PROXIES", int),
        ):
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                value = conv(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid {conv.__name__}") from None
            if value < 0:
                raise ConfigError(f"{var}={raw!r} must not be negative")
            values[name] = value
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> ExplorerConfig:
        """A copy with the given fields replaced (unknown names are an error)."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown explorer settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)
