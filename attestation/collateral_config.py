"""The ``[collateral]`` table of a TOML configuration: where Intel collateral comes from, the
same options as ``teelog verify --collateral/--pccs/--collateral-cache``::

    [collateral]
    files = ["tdx.collateral.json"]       # local collateral documents (by FMSPC)
    pccs_url = "https://pccs.example"     # a PCCS/PCS to fetch missing collateral from
    cache_dir = "collateral-cache/"       # where fetched collateral is kept

Both the collector and the broker read it (one home for the options; the source they open is
:class:`teelog.attestation.collateral.Collateral`). Relative paths are against ``base``, the
configuration file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config_table import ConfigError, Table, http_url


@dataclass(frozen=True, slots=True)
class CollateralConfig:
    """Where Intel collateral comes from: local files (by FMSPC) and/or a PCCS/PCS URL + cache."""

    pccs_url: str | None = None
    cache_dir: Path | None = None
    files: tuple[Path, ...] = ()


def parse_collateral(data: Any, base: Path) -> CollateralConfig:
    """The ``[collateral]`` table (``data``, ``{}`` when absent); every file must exist."""
    t = Table(data, "collateral")
    pccs = t.get("pccs_url")
    pccs_url = http_url(pccs, t.path("pccs_url")) if pccs is not None else None
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


__all__ = ["CollateralConfig", "parse_collateral"]
