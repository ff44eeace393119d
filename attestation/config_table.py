"""Reading a TOML configuration table (``tomllib``, TOML v1.0.0 tables): typed getters whose
errors name the offending key the way a reader finds it in the file (``nodes[1].interval: …``,
0-based), and a check for unknown keys.

``teelog collect --config`` and ``teelog broker --config`` both read their files with it; it
lives here, beside :mod:`teelog.attestation.times` (whose durations it parses), because both
already depend on ``teelog.attestation`` and it imports nothing else of ours.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import times


class ConfigError(ValueError):
    """The configuration is unusable; the message starts with the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


def read_toml_file(path: Path) -> dict[str, Any]:
    """The TOML document in ``path`` (UTF-8, TOML v1.0.0), or :class:`ConfigError` saying why
    it cannot be read (missing file, not UTF-8, not TOML)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path} is not UTF-8 text") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path}: not valid TOML: {exc}") from exc


def parse_duration(value: Any, key: str) -> float:
    """A config duration (``attestation.times.parse_duration``: ``"5s"``, ``"2m"``, ``"1.5h"``,
    ``"250ms"`` or a positive number of seconds) → seconds; :class:`ConfigError` naming ``key``."""
    try:
        return times.parse_duration(value)
    except times.TimeFormatError as exc:
        raise ConfigError(key, str(exc)) from None


def http_url(value: Any, key: str) -> str:
    """An ``http://`` or ``https://`` URL with a host and no credentials (secrets come from the
    environment, never from the file), without its trailing ``/``."""
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a URL string, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"expected an http:// or https:// URL, got {value!r}")
    if parts.username or parts.password:
        raise ConfigError(key, "credentials do not belong in the URL; use token_env / secret_env")
    return value.rstrip("/")


class Table:
    """A TOML table being read: typed getters that name the key, and a check for unknown keys."""

    def __init__(self, data: Any, key: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(key, f"expected a table, got {type(data).__name__}")
        self.data = data
        self.key = key
        self.used: set[str] = set()

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.data

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.get(name)
        if value is None:
            if required:
                raise ConfigError(self.path(name), "is required")
            return default
        if not isinstance(value, str) or not value:
            raise ConfigError(self.path(name), f"expected a non-empty string, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.path(name), f"expected true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        value = self.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(self.path(name), f"expected an integer ≥ {minimum}, got {value!r}")
        return value

    def duration(self, name: str, default: float) -> float:
        value = self.get(name)
        return default if value is None else parse_duration(value, self.path(name))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.path(unknown[0]), "unknown key")


__all__ = ["ConfigError", "Table", "http_url", "parse_duration"]


CONFIG_ENV = "TEELOG_CONFIG"


def find_config_file(
    explicit: Path | str | None, environ: dict[str, str] | None = None
) -> Path | None:
    """The ``teelog.toml`` every command reads: ``--config FILE`` (``explicit``), else
    ``$TEELOG_CONFIG``, else ``$XDG_CONFIG_HOME/teelog/teelog.toml`` (``~/.config/…``, XDG Base
    Directory Specification 0.8) if that file exists, else ``None`` (no config file).

    A file named explicitly or by the variable must exist (:class:`ConfigError`); only the
    XDG default is optional."""
    env = os.environ if environ is None else environ
    named = explicit if explicit is not None else env.get(CONFIG_ENV) or None
    if named is not None:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "--config" if explicit is not None else f"${CONFIG_ENV}"
            raise ConfigError("", f"{source}: no such file: {path}")
        return path
    base = env.get("XDG_CONFIG_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or str(Path.home()), ".config")
    default = Path(base) / "teelog" / "teelog.toml"
    return default if default.is_file() else None
