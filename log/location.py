"""Where a log's data lives: the data directory, the database and the object store.

The one home of this concept (issue 12): every command that touches data (``teelog serve``,
``collect``, ``broker``, ``log …``) resolves its :class:`StorageLocation` with
:func:`resolve_location`, so ``--data``/``--database``/``--objects``, the ``TEELOG_*``
environment overrides and a config file's ``[log]`` table mean the same everywhere.

Precedence, strongest first: the command-line value, the environment (``TEELOG_DATA``,
``TEELOG_DATABASE`` — ``TEELOG_DATABASE_URL`` is still read as its older name —,
``TEELOG_OBJECTS``), the ``[log]`` table (``data``, ``database``, ``objects``; relative paths
against the config file's directory), then the default. The default data directory is
``$XDG_DATA_HOME/teelog`` (``~/.local/share/teelog``; XDG Base Directory Specification
0.8), so nothing is written to the working directory unless asked.

It lives in ``log/`` because the log owns its storage, and it imports nothing else of ours
(the layering contract for ``log/``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DATA_ENV = "TEELOG_DATA"
DATABASE_ENV = "TEELOG_DATABASE"
DATABASE_ENV_OLD = "TEELOG_DATABASE_URL"
OBJECTS_ENV = "TEELOG_OBJECTS"

_DATABASE_DIALECTS = ("sqlite", "postgresql")


class LocationError(ValueError):
    """A storage location value is unusable; the message names where it came from."""


@dataclass(frozen=True)
class StorageLocation:
    """The resolved location of one log.

    ``database_url`` ``None`` means the embedded SQLite file ``data_dir/teelog.db``;
    ``objects_url`` ``None`` means the directory layout under ``data_dir``.
    """

    data_dir: Path
    database_url: str | None = None
    objects_url: str | None = None


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/teelog``, else ``~/.local/share/teelog`` (XDG: a relative
    ``XDG_DATA_HOME`` is invalid and ignored)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    if not base or not os.path.isabs(base):
        home = env.get("HOME") or str(Path.home())
        base = os.path.join(home, ".local", "share")
    return Path(base) / "teelog"


def check_database_url(value: Any, source: str) -> str:
    """``value`` as an SQLAlchemy URL of SQLite or PostgreSQL, or :class:`LocationError`."""
    if not isinstance(value, str) or not value:
        raise LocationError(f"{source}: expected a database URL string, got {value!r}")
    try:
        url = make_url(value)
    except ArgumentError:
        raise LocationError(f"{source}: not a database URL: {value!r}") from None
    if url.get_backend_name() not in _DATABASE_DIALECTS:
        raise LocationError(
            f"{source}: unsupported database {url.get_backend_name()!r} "
            "(expected sqlite:/// or postgresql://)"
        )
    return value


def check_objects_url(value: Any, source: str, base: Path | None = None) -> str:
    """``value`` as ``s3://bucket[/prefix]`` or a directory path (absolute, or relative to
    ``base``), or :class:`LocationError`."""
    if not isinstance(value, str) or not value:
        raise LocationError(f"{source}: expected a directory or s3:// URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme == "s3":
        if not parts.netloc or parts.username or parts.password or parts.port:
            raise LocationError(
                f"{source}: expected s3://bucket/prefix (credentials come from [objects] or "
                f"AWS_* variables), got {value!r}"
            )
        return value
    if parts.scheme and len(parts.scheme) > 1:  # "C:" style drive letters aside
        raise LocationError(f"{source}: unsupported object store scheme {parts.scheme!r}")
    path = Path(value).expanduser()
    return str(path if path.is_absolute() or base is None else base / path)


def resolve_location(
    *,
    data: str | Path | None = None,
    database: str | None = None,
    objects: str | None = None,
    table: Mapping[str, Any] | None = None,
    base: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> StorageLocation:
    """The :class:`StorageLocation` from command-line values, then ``environ`` (default
    ``os.environ``), then ``table`` (a config file's ``[log]`` table, paths relative to
    ``base``), then the defaults. Raises :class:`LocationError` naming the bad value's source.
    """
    env = os.environ if environ is None else environ
    tbl = table or {}

    def pick(cli: Any, cli_name: str, env_names: tuple[str, ...], key: str) -> tuple[Any, str]:
        if cli is not None:
            return cli, cli_name
        for name in env_names:
            if env.get(name):
                return env[name], f"${name}"
        if key in tbl:
            return tbl[key], f"log.{key}"
        return None, ""

    raw_data, src = pick(data, "--data", (DATA_ENV,), "data")
    if raw_data is None:
        data_dir = default_data_dir(env)
    elif isinstance(raw_data, (str, Path)) and str(raw_data):
        data_dir = Path(raw_data).expanduser()
        if src == "log.data" and not data_dir.is_absolute() and base is not None:
            data_dir = base / data_dir
    else:
        raise LocationError(f"{src}: expected a directory path, got {raw_data!r}")

    raw_db, src = pick(database, "--database", (DATABASE_ENV, DATABASE_ENV_OLD), "database")
    database_url = None if raw_db is None else check_database_url(raw_db, src)

    raw_obj, src = pick(objects, "--objects", (OBJECTS_ENV,), "objects")
    objects_base = base if src == "log.objects" else Path.cwd()
    objects_url = None if raw_obj is None else check_objects_url(raw_obj, src, objects_base)

    unknown = sorted(set(tbl) - {"data", "database", "objects"})
    if unknown:
        raise LocationError(f"log.{unknown[0]}: unknown key (expected data, database, objects)")
    return StorageLocation(data_dir=data_dir, database_url=database_url, objects_url=objects_url)
