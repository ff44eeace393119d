"""The package arrows of docs/architecture.md, checked on the source: which package may import
which of ours. Imports are read with ``ast`` (also those inside functions, and relative ones
resolved against the importing module), so a lazy import cannot hide an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package folder -> the packages of ours it may import besides itself (None: any)
ALLOWED: dict[str, set[str] | None] = {
    "attestation": set(),
    "log": set(),
    "entries": {"attestation", "log"},
    "explorer": {"attestation", "log", "entries", "templates"},
    "monitor": {"attestation", "log", "entries"},
    "collector": {"attestation", "log", "entries"},
    "node": {"attestation", "models"},
    "models": set(),
    "broker": {"attestation", "entries", "log", "models"},
    "witness": {"log"},
}


def imported_modules(folder: Path, package: str) -> dict[str, set[str]]:
    """``{module of ours imported (dotted, from teelog): {"file:line", …}}`` under ``folder``."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder)
        module = ["teelog", package, *rel.with_suffix("").parts]
        if module[-1] == "__init__":
            module.pop()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module[: len(module) - node.level + (rel.name == "__init__.py")]
                    names = [".".join([*base, *([node.module] if node.module else [])])]
                else:
                    names = [node.module or ""]
                # from teelog import attestation / from . import views: the names are modules
                if names[0] in ("teelog", f"teelog.{package}"):
                    names = [f"{names[0]}.{alias.name}" for alias in node.names]
            for name in names:
                if name == "teelog" or name.startswith("teelog."):
                    found.setdefault(name, set()).add(f"{rel}:{node.lineno}")
    return found


def imported_packages(folder: Path, package: str) -> dict[str, set[str]]:
    """``{our package imported: {"file:line", …}}``: :func:`imported_modules` by package."""
    found: dict[str, set[str]] = {}
    for name, places in imported_modules(folder, package).items():
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else "teelog"
        found.setdefault(target, set()).update(places)
    return found


def violations(folder: Path, package: str, allowed: set[str] | None) -> list[str]:
    if allowed is None:
        return []
    out = []
    for target, places in sorted(imported_packages(folder, package).items()):
        if target != package and target not in allowed:
            out.append(f"{package}/ imports teelog.{target} at {', '.join(sorted(places))}")
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_arrows_allow(package):
    assert violations(ROOT / package, package, ALLOWED[package]) == []


def test_a_forbidden_import_is_found_absolute_relative_and_lazy(tmp_path):
    explorer = tmp_path / "explorer"
    (explorer / "sub").mkdir(parents=True)
    (explorer / "__init__.py").write_text("from teelog.entries import attestation\n")
    (explorer / "sub" / "__init__.py").write_text("")
    (explorer / "sub" / "lazy.py").write_text(
        "def f():\n    from ...collector.poll import Recorder\n    return Recorder\n"
    )
    (explorer / "direct.py").write_text("import teelog.collector.webhooks\n")
    found = violations(explorer, "explorer", ALLOWED["explorer"])
    assert found == ["explorer/ imports teelog.collector at direct.py:1, sub/lazy.py:2"]
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "x.py").write_text("from teelog import attestation\n")
    assert violations(tmp_path / "log", "log", set()) == [
        "log/ imports teelog.attestation at x.py:1"
    ]


def test_blueprints_reach_the_shared_state_without_importing_the_app_factory():
    """explorer/state.py holds what the blueprints share, so app.py and they are no circle."""
    importers = imported_modules(ROOT / "explorer", "explorer").get("teelog.explorer.app", set())
    files = {place.split(":")[0] for place in importers}
    assert files <= {"__init__.py", "cli.py", "wsgi.py"}, sorted(importers)
    assert "teelog.explorer.state" in imported_modules(ROOT / "explorer", "explorer")


def test_the_broker_reading_its_toml_with_the_collectors_reader_is_a_violation(tmp_path):
    """The broker's config reads TOML with ``attestation.config_table``; the collector's own
    reader (the arrow broker/config.py once had) is outside the broker's arrows."""
    broker = tmp_path / "broker"
    broker.mkdir()
    (broker / "config.py").write_text(
        "from teelog.attestation.config_table import Table\n"
        "from teelog.collector.config import CollateralConfig\n"
    )
    assert violations(broker, "broker", ALLOWED["broker"]) == [
        "broker/ imports teelog.collector at config.py:2"
    ]
