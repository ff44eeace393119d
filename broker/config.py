"""The broker's configuration, ``broker.toml`` (``teelog broker --config broker.toml``)::

    [broker]                      # optional
    name = "broker-1"             # the ``broker`` of every entry (default "teelog-broker")
    token_ttl = "5m"              # lifetime of attestation tokens (default 5 minutes)
    rim_dir = "rims/"             # NVIDIA RIM files for gpu.rim (optional)

    [log]
    data = "/path/to/data"        # the log's data directory, as for the collector

    [collateral]                  # as ``teelog verify --collateral/--pccs/--collateral-cache``
    files = ["tdx.collateral.json"]
    pccs_url = "https://pccs.example"
    cache_dir = "collateral-cache/"

    [[resources]]                 # one per model version
    path = "acme/model-key/llama3-70b-v3"
    key = "keys/llama3-70b-v3.key"   # teelog model encrypt --key-out; mode 0600
    manifest = "enc/llama3-70b-v3/manifest.json"   # teelog model encrypt's manifest
    policy = "policies/llama3-70b-v3.json"

Relative paths are against the file's directory. Every error names its key
(``resources[1].key: …``, 0-based): the file is read with ``attestation.config_table`` and its
``[collateral]`` table with ``attestation.collateral_config`` (the same options as ``teelog
verify``), as the collector's is.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teelog.attestation.collateral_config import CollateralConfig, parse_collateral
from teelog.attestation.config_table import ConfigError, Table, parse_duration, read_toml_file
from teelog.entries.release_policy import Policy, PolicyError, load_policy
from teelog.log.location import LocationError, resolve_location
from teelog.models import ModelInputError, key_id, manifest_digest, parse_manifest, read_key_file

from .errors import KbsError
from .resource_path import parse_resource_path

DEFAULT_NAME = "teelog-broker"
DEFAULT_TOKEN_TTL = 300.0


@dataclass(frozen=True, slots=True)
class Resource:
    """One model version the broker releases the key of (the key itself stays on disk)."""

    path: str
    key_file: Path
    key_id: str
    model: str
    version: str
    manifest_sha256: str
    policy: Policy

    def read_key(self) -> bytes:
        """The key bytes, read at release time (checked again: 0600, 32 bytes)."""
        return read_private_key_file(self.key_file, "key")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """``data``/``database``: where the log lives (:mod:`teelog.log.location`)."""

    data: Path
    name: str = DEFAULT_NAME
    token_ttl: float = DEFAULT_TOKEN_TTL
    rim_dir: Path | None = None
    collateral: CollateralConfig = field(default_factory=CollateralConfig)
    resources: tuple[Resource, ...] = ()
    database: str | None = None

    def resource(self, path: str) -> Resource | None:
        return next((r for r in self.resources if r.path == path), None)


def read_private_key_file(path: Path, key: str) -> bytes:
    """A model key file (``teelog.models`` format: 32 raw bytes) that only its owner can read;
    ``ConfigError`` naming ``key`` if it is missing, readable by group or others, or not a key."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(key, f"cannot read key file {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise ConfigError(key, f"key file {path} has mode {mode:04o}; it must be 0600 "
                          "(readable by the broker's user only)")
    try:
        return read_key_file(path)
    except ModelInputError as exc:
        raise ConfigError(key, str(exc)) from None


def _resource(data: Any, where: str, base: Path) -> Resource:
    t = Table(data, where)
    path = t.string("path", required=True)
    try:
        parse_resource_path(path)
    except KbsError as exc:
        raise ConfigError(t.path("path"), exc.detail) from None
    key_file = (base / t.string("key", required=True)).expanduser()
    manifest_file = (base / t.string("manifest", required=True)).expanduser()
    policy_file = (base / t.string("policy", required=True)).expanduser()
    t.finish()
    key = read_private_key_file(key_file, t.path("key"))
    try:
        manifest = parse_manifest(manifest_file.read_bytes())
    except OSError as exc:
        raise ConfigError(t.path("manifest"), f"cannot read {manifest_file}: "
                          f"{exc.strerror or exc}") from exc
    except ModelInputError as exc:
        raise ConfigError(t.path("manifest"), f"{manifest_file}: {exc}") from None
    kid = key_id(key)
    if manifest.key_id != kid:
        raise ConfigError(t.path("key"), f"the key's id {kid} is not the manifest's key_id "
                          f"{manifest.key_id}: wrong key for this model version")
    try:
        policy = load_policy(policy_file)
    except PolicyError as exc:
        raise ConfigError(t.path("policy"), str(exc)) from None
    return Resource(
        path=path,
        key_file=key_file,
        key_id=kid,
        model=manifest.model,
        version=manifest.version,
        manifest_sha256=manifest_digest(manifest),
        policy=policy,
    )


def parse_config(data: dict[str, Any], *, base: Path) -> BrokerConfig:
    top = Table(data, "")
    raw_log = top.get("log", {})
    if not isinstance(raw_log, dict):
        raise ConfigError("log", "expected a table ([log])")
    try:
        location = resolve_location(table=raw_log, base=base)
    except LocationError as exc:
        raise ConfigError("", str(exc)) from None
    if location.objects_url is not None:  # refused, not silently ignored, until Log takes it
        raise ConfigError("log.objects", "an object store is not supported by this log yet")
    broker = Table(top.get("broker", {}), "broker")
    name = broker.string("name", DEFAULT_NAME)
    ttl = broker.get("token_ttl")
    token_ttl = DEFAULT_TOKEN_TTL if ttl is None else parse_duration(ttl, "broker.token_ttl")
    rim = broker.string("rim_dir")
    broker.finish()
    rim_dir = (base / rim).expanduser() if rim else None
    if rim_dir is not None and not rim_dir.is_dir():
        raise ConfigError("broker.rim_dir", f"not a directory: {rim_dir}")
    collateral = parse_collateral(top.get("collateral", {}), base)
    raw = top.get("resources", [])
    if not isinstance(raw, list):
        raise ConfigError("resources", "expected an array of tables ([[resources]])")
    resources = tuple(_resource(r, f"resources[{i}]", base) for i, r in enumerate(raw))
    seen: dict[str, int] = {}
    for i, r in enumerate(resources):
        if r.path in seen:
            raise ConfigError(
                f"resources[{i}].path", f"{r.path!r} is also resources[{seen[r.path]}]"
            )
        seen[r.path] = i
    top.finish()
    return BrokerConfig(
        data=location.data_dir,
        database=location.database_url,
        name=name,
        token_ttl=token_ttl,
        rim_dir=rim_dir,
        collateral=collateral,
        resources=resources,
    )


def load_config(path: str | Path) -> BrokerConfig:
    """Read and check ``broker.toml``; relative paths are against its directory."""
    path = Path(path)
    data = read_toml_file(path)
    return parse_config(data, base=path.parent.resolve())


__all__ = ["BrokerConfig", "ConfigError", "Resource", "load_config", "parse_config"]
