"""The collector's configuration: a TOML file (``teelog collect --config FILE``).

The minimal form is fixed (other tools, such as ``teelog demo``, write it)::

    [log]
    data = "/path/to/data"

    [[nodes]]
    name = "node-1"
    url = "http://127.0.0.1:8001"
    format = "auto"
    interval = "5s"

Everything else is optional and documented in ``docs/collector.md``. Every error names the
offending key the way a reader finds it in the file (``nodes[1].interval: …``, 0-based).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from teelog.attestation.collateral_config import CollateralConfig, parse_collateral
from teelog.attestation.config_table import ConfigError, Table, http_url, read_toml_file
from teelog.log.location import LocationError, StorageLocation, resolve_location

ReportFormat = Literal["auto", "vllm-proxy", "near-gateway", "redpill-chutes"]
REPORT_FORMATS: tuple[str, ...] = ("auto", "vllm-proxy", "near-gateway", "redpill-chutes")
# Formats whose nodes publish teelog's receipts feed (``GET /v1/receipts``) by default.
_FEED_FORMATS = ("auto", "vllm-proxy")

_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNIT_BYTES = {
    None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 2**20, "GB": 10**9,
    "GiB": 2**30,
}

DEFAULT_MAX_RESPONSE_BYTES = 16 * 2**20  # the NEAR AI bundle is ~240 KB; 8-GPU Redpill ~1 MB
DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One node to poll. ``token_env`` names the environment variable holding its bearer token."""

    name: str
    url: str
    format: ReportFormat = "auto"
    interval: float = DEFAULT_INTERVAL
    model: str | None = None
    token_env: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    signing_algo: Literal["ecdsa", "ed25519"] = "ecdsa"
    receipts: bool = True
    receipts_interval: float = DEFAULT_INTERVAL
    receipts_batch: int = 100
    max_backoff: float = 600.0

    def token(self) -> str | None:
        """The bearer token, read from the environment when needed (never stored)."""
        return os.environ.get(self.token_env) if self.token_env else None


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One webhook subscription; ``nodes`` empty means every node."""

    url: str
    secret_env: str | None = None
    nodes: tuple[str, ...] = ()
    timeout: float = 10.0
    max_attempts: int = 8

    def secret(self) -> bytes:
        """The HMAC key, read from the environment (empty when no secret is configured)."""
        value = os.environ.get(self.secret_env, "") if self.secret_env else ""
        return value.encode()

    def wants(self, node: str) -> bool:
        return not self.nodes or node in self.nodes


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """The whole configuration. ``data`` is the log's data directory, ``database`` its
    database URL (``None``: the SQLite file in ``data``), both from
    :func:`teelog.log.location.resolve_location`."""

    data: Path
    nodes: tuple[NodeConfig, ...] = ()
    collateral: CollateralConfig = field(default_factory=CollateralConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    workers: int = 0  # 0: one thread per job, up to 64
    verify_processes: int = 0  # 0: verify in the polling threads
    source: Path | None = None
    database: str | None = None

    def node(self, name: str) -> NodeConfig:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


def parse_size(value: Any, key: str) -> int:
    """``"16MiB"``, ``"64KB"`` or a positive integer number of bytes → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(m.group(1)) * _UNIT_BYTES[m.group(2)]
    else:
        raise ConfigError(key, f'expected a size like "16MiB" or a number of bytes, got {value!r}')
    if size <= 0:
        raise ConfigError(key, f"must be positive, got {value!r}")
    return size


def _env_name(table: Table, name: str) -> str | None:
    value = table.string(name)
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ConfigError(table.path(name), f"expected an environment variable name, got {value!r}")
    return value


def _node(data: Any, key: str, defaults: dict[str, Any]) -> NodeConfig:
    t = Table(data, key)
    name = t.string("name", required=True)
    if not _NODE_NAME.match(name):
        raise ConfigError(
            t.path("name"), f"expected letters, digits, '.', '_' or '-' (≤ 64), got {name!r}"
        )
    url = http_url(t.get("url"), t.path("url")) if t.has("url") else None
    if url is None:
        raise ConfigError(t.path("url"), "is required")
    fmt = t.get("format", "auto")
    if fmt not in REPORT_FORMATS:
        choices = ", ".join(REPORT_FORMATS)
        raise ConfigError(t.path("format"), f"expected one of {choices}, got {fmt!r}")
    algo = t.get("signing_algo", "ecdsa")
    if algo not in ("ecdsa", "ed25519"):
        raise ConfigError(t.path("signing_algo"), f"expected ecdsa or ed25519, got {algo!r}")
    interval = t.duration("interval", defaults.get("interval", DEFAULT_INTERVAL))
    max_bytes = t.get("max_response_bytes")
    node = NodeConfig(
        name=name,
        url=url,
        format=fmt,
        interval=interval,
        model=t.string("model"),
        token_env=_env_name(t, "token_env"),
        timeout=t.duration("timeout", defaults.get("timeout", DEFAULT_TIMEOUT)),
        max_response_bytes=(
            parse_size(max_bytes, t.path("max_response_bytes"))
            if max_bytes is not None
            else defaults.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
        ),
        signing_algo=algo,
        receipts=t.boolean("receipts", fmt in _FEED_FORMATS),
        receipts_interval=t.duration("receipts_interval", interval),
        receipts_batch=t.integer("receipts_batch", 100),
        max_backoff=t.duration("max_backoff", 600.0),
    )
    t.finish()
    return node


def _webhook(data: Any, key: str, node_names: set[str]) -> WebhookConfig:
    t = Table(data, key)
    url = t.get("url")
    if url is None:
        raise ConfigError(t.path("url"), "is required")
    url = http_url(url, t.path("url"))
    nodes = t.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        raise ConfigError(t.path("nodes"), f"expected a list of node names, got {nodes!r}")
    for i, n in enumerate(nodes):
        if n not in node_names:
            raise ConfigError(f"{t.path('nodes')}[{i}]", f"no node named {n!r}")
    hook = WebhookConfig(
        url=url,
        secret_env=_env_name(t, "secret_env"),
        nodes=tuple(nodes),
        timeout=t.duration("timeout", 10.0),
        max_attempts=t.integer("max_attempts", 8),
    )
    t.finish()
    return hook


def _location(table: Any, base: Path) -> StorageLocation:
    """The ``[log]`` table (``data``, ``database``, ``objects``) under the TEELOG_* overrides."""
    if not isinstance(table, dict):
        raise ConfigError("log", "expected a table ([log])")
    try:
        location = resolve_location(table=table, base=base)
    except LocationError as exc:
        raise ConfigError("", str(exc)) from None
    if location.objects_url is not None:  # refused, not silently ignored, until Log takes it
        raise ConfigError("log.objects", "an object store is not supported by this log yet")
    return location


def parse_config(data: dict[str, Any], *, base: Path | None = None) -> CollectorConfig:
    """Build a :class:`CollectorConfig` from parsed TOML; relative paths are against ``base``."""
    base = base or Path.cwd()
    top = Table(data, "")
    location = _location(top.get("log", {}), base)

    defaults_table = Table(top.get("defaults", {}), "defaults")
    defaults: dict[str, Any] = {}
    if defaults_table.has("interval"):
        defaults["interval"] = defaults_table.duration("interval", DEFAULT_INTERVAL)
    if defaults_table.has("timeout"):
        defaults["timeout"] = defaults_table.duration("timeout", DEFAULT_TIMEOUT)
    if defaults_table.has("max_response_bytes"):
        defaults["max_response_bytes"] = parse_size(
            defaults_table.get("max_response_bytes"), "defaults.max_response_bytes"
        )
    defaults_table.finish()

    raw_nodes = top.get("nodes", [])
    if not isinstance(raw_nodes, list):
        raise ConfigError("nodes", "expected an array of tables ([[nodes]])")
    nodes = tuple(_node(n, f"nodes[{i}]", defaults) for i, n in enumerate(raw_nodes))
    seen: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if n.name in seen:
            raise ConfigError(f"nodes[{i}].name", f"{n.name!r} is also nodes[{seen[n.name]}]")
        seen[n.name] = i

    raw_hooks = top.get("webhooks", [])
    if not isinstance(raw_hooks, list):
        raise ConfigError("webhooks", "expected an array of tables ([[webhooks]])")
    hooks = tuple(_webhook(h, f"webhooks[{i}]", set(seen)) for i, h in enumerate(raw_hooks))
    urls: dict[str, int] = {}
    for i, h in enumerate(hooks):
        if h.url in urls:
            raise ConfigError(f"webhooks[{i}].url", f"{h.url!r} is also webhooks[{urls[h.url]}]")
        urls[h.url] = i
    collateral = parse_collateral(top.get("collateral", {}), base)
    collector = Table(top.get("collector", {}), "collector")
    workers = collector.integer("workers", 0, minimum=0)
    verify_processes = collector.integer("verify_processes", 0, minimum=0)
    collector.finish()
    top.finish()
    return CollectorConfig(
        data=location.data_dir,
        database=location.database_url,
        nodes=nodes,
        collateral=collateral,
        webhooks=hooks,
        workers=workers,
        verify_processes=verify_processes,
    )


def load_config(path: str | Path) -> CollectorConfig:
    """Read and check a TOML configuration file; relative paths are against its directory."""
    path = Path(path)
    data = read_toml_file(path)
    config = parse_config(data, base=path.parent.resolve())
    return replace(config, source=path)
