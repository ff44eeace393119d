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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from teelog.attestation import times

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


class ConfigError(ValueError):
    """The configuration is unusable; the message starts with the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


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
class CollateralConfig:
    """Where Intel collateral comes from: local files (by FMSPC) and/or a PCCS/PCS URL + cache."""

    pccs_url: str | None = None
    cache_dir: Path | None = None
    files: tuple[Path, ...] = ()


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
    """The whole configuration. ``data`` is the log's data directory."""

    data: Path
    nodes: tuple[NodeConfig, ...] = ()
    collateral: CollateralConfig = field(default_factory=CollateralConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    workers: int = 0  # 0: one thread per job, up to 64
    verify_processes: int = 0  # 0: verify in the polling threads
    source: Path | None = None

    def node(self, name: str) -> NodeConfig:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


def parse_duration(value: Any, key: str) -> float:
    """A config duration (``attestation.times.parse_duration``: ``"5s"``, ``"2m"``, ``"1.5h"``,
    ``"250ms"`` or a positive number of seconds) → seconds; :class:`ConfigError` naming ``key``."""
    try:
        return times.parse_duration(value)
    except times.TimeFormatError as exc:
        raise ConfigError(key, str(exc)) from None


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


def _http_url(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a URL string, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"expected an http:// or https:// URL, got {value!r}")
    if parts.username or parts.password:
        raise ConfigError(key, "credentials do not belong in the URL; use token_env / secret_env")
    return value.rstrip("/")


class _Table:
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


def _env_name(table: _Table, name: str) -> str | None:
    value = table.string(name)
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ConfigError(table.path(name), f"expected an environment variable name, got {value!r}")
    return value


def _node(data: Any, key: str, defaults: dict[str, Any]) -> NodeConfig:
    t = _Table(data, key)
    name = t.string("name", required=True)
    if not _NODE_NAME.match(name):
        raise ConfigError(
            t.path("name"), f"expected letters, digits, '.', '_' or '-' (≤ 64), got {name!r}"
        )
    url = _http_url(t.get("url"), t.path("url")) if t.has("url") else None
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
    t = _Table(data, key)
    url = t.get("url")
    if url is None:
        raise ConfigError(t.path("url"), "is required")
    url = _http_url(url, t.path("url"))
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


def _collateral(data: Any, base: Path) -> CollateralConfig:
    t = _Table(data, "collateral")
    pccs = t.get("pccs_url")
    pccs_url = _http_url(pccs, t.path("pccs_url")) if pccs is not None else None
    cache = t.string("cache_dir")
    files = t.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(t.path("files"), f"expected a list of file paths, got {files!r}")
    paths = []
    for i, f in enumerate(files):
        p = (base / f).expanduser()
        if not p.is_file():
            raise ConfigError(f"collateral.files[{i}]", f"no such file: {p}")
        paths.append(p)
    t.finish()
    return CollateralConfig(
        pccs_url=pccs_url,
        cache_dir=(base / cache).expanduser() if cache else None,
        files=tuple(paths),
    )


def parse_config(data: dict[str, Any], *, base: Path | None = None) -> CollectorConfig:
    """Build a :class:`CollectorConfig` from parsed TOML; relative paths are against ``base``."""
    base = base or Path.cwd()
    top = _Table(data, "")
    log = _Table(top.get("log", {}), "log")
    data_dir = log.string("data")
    if data_dir is None:
        raise ConfigError("log.data", "is required (the log's data directory)")
    log.finish()

    defaults_table = _Table(top.get("defaults", {}), "defaults")
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
    collateral = _collateral(top.get("collateral", {}), base)
    collector = _Table(top.get("collector", {}), "collector")
    workers = collector.integer("workers", 0, minimum=0)
    verify_processes = collector.integer("verify_processes", 0, minimum=0)
    collector.finish()
    top.finish()
    return CollectorConfig(
        data=(base / data_dir).expanduser(),
        nodes=nodes,
        collateral=collateral,
        webhooks=hooks,
        workers=workers,
        verify_processes=verify_processes,
    )


def load_config(path: str | Path) -> CollectorConfig:
    """Read and check a TOML configuration file; relative paths are against its directory."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path} is not UTF-8 text") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path}: not valid TOML: {exc}") from exc
    config = parse_config(data, base=path.parent.resolve())
    return CollectorConfig(
        data=config.data,
        nodes=config.nodes,
        collateral=config.collateral,
        webhooks=config.webhooks,
        workers=config.workers,
        verify_processes=config.verify_processes,
        source=path,
    )
