"""The explorer's settings, from the environment (12-factor, as the Flask tutorial does).

| variable | default | meaning |
|---|---|---|
| ``TEELOG_DATA`` | ``$XDG_DATA_HOME/teelog`` | the data directory (``--data`` wins) |
| ``TEELOG_DATABASE`` | ``DIR/teelog.db`` | the log's database URL (``--database`` wins) |
| ``TEELOG_STALE_AFTER`` | 300 | duration after which ``/healthz`` says stale (503) |
| ``TEELOG_INDEX_INTERVAL`` | 1.0 | at most one index catch-up per this duration of requests |

Durations use the one syntax of ``attestation.times.parse_duration`` (``"5m"``, ``"300"``). The
data directory and database resolve through :mod:`teelog.log.location`.
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

from teelog.attestation.config_table import ConfigError as TableConfigError
from teelog.attestation.config_table import read_toml_file
from teelog.attestation.times import TimeFormatError, parse_duration
from teelog.log.location import LocationError, resolve_location


def _duration(raw: str) -> float:
    """A duration in the one config syntax; ``ValueError`` (as ``float`` raises) otherwise."""
    try:
        return parse_duration(raw)
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


_duration.__name__ = "duration"


class ConfigError(ValueError):
    """A setting has an unusable value; the message names the variable."""


@dataclass(frozen=True, slots=True)
class ExplorerConfig:
    """Settings of one explorer process (see the module docstring for the variables)."""

    data_dir: Path
    database_url: str | None = None
    stale_after: float = 300.0
    index_interval: float = 1.0
    verify_max_bytes: int = 2 * 1024 * 1024
    verify_rate: int = 10
    trusted_proxies: int = 0
    pccs_url: str | None = None

    @classmethod
    def from_env(
        cls,
        data_dir: str | os.PathLike[str] | None,
        env: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
        config_file: Path | None = None,
    ) -> ExplorerConfig:
        """Settings from ``env`` (default ``os.environ``); ``data_dir`` overrides TEELOG_DATA,
        ``database_url`` TEELOG_DATABASE, and both override ``config_file``'s ``[log]`` table
        (``teelog.toml``, see docs/config.md)."""
        env = os.environ if env is None else env
        table: dict[str, Any] = {}
        if config_file is not None:
            try:
                table = read_toml_file(config_file).get("log", {})
            except TableConfigError as exc:
                raise ConfigError(str(exc)) from None
        try:
            where = resolve_location(
                data=None if data_dir is None else Path(data_dir),
                database=database_url,
                table=table,
                base=None if config_file is None else config_file.parent.resolve(),
                environ=env,
            )
        except LocationError as exc:
            raise ConfigError(str(exc)) from None
        values: dict[str, Any] = {"data_dir": where.data_dir, "database_url": where.database_url}
        if env.get("TEELOG_PCCS_URL"):
            values["pccs_url"] = env["TEELOG_PCCS_URL"]
        for name, var, conv in (
            ("stale_after", "TEELOG_STALE_AFTER", _duration),
            ("index_interval", "TEELOG_INDEX_INTERVAL", _duration),
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
