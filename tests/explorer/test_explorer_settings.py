"""ExplorerConfig.from_env: TEELOG_* durations in the one syntax, data and database location."""

from __future__ import annotations

from pathlib import Path

import pytest
from teelog.explorer.config import ConfigError, ExplorerConfig


def test_durations_take_the_one_config_syntax(tmp_path: Path) -> None:
    env = {"TEELOG_STALE_AFTER": "5m", "TEELOG_INDEX_INTERVAL": "250ms"}
    settings = ExplorerConfig.from_env(tmp_path, env)
    assert (settings.stale_after, settings.index_interval) == (300.0, 0.25)
    assert ExplorerConfig.from_env(tmp_path, {"TEELOG_STALE_AFTER": "60"}).stale_after == 60.0


def test_a_bad_duration_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TEELOG_STALE_AFTER='soon' is not a valid duration"):
        ExplorerConfig.from_env(tmp_path, {"TEELOG_STALE_AFTER": "soon"})


def test_data_and_database_resolve_through_the_log_location(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path), "TEELOG_DATABASE": "sqlite:///x.db"}
    settings = ExplorerConfig.from_env(None, env)
    assert settings.data_dir == tmp_path / "teelog"
    assert settings.database_url == "sqlite:///x.db"
    with pytest.raises(ConfigError, match=r"\$TEELOG_DATABASE: unsupported database 'mysql'"):
        ExplorerConfig.from_env(None, {"TEELOG_DATABASE": "mysql://h/d"})


def test_the_log_table_of_a_config_file_is_read_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "teelog.toml").write_text('[log]\ndata = "d"\ndatabase = "sqlite:///y.db"\n')
    settings = ExplorerConfig.from_env(None, {}, config_file=tmp_path / "teelog.toml")
    assert (settings.data_dir, settings.database_url) == (tmp_path / "d", "sqlite:///y.db")
    (tmp_path / "bad.toml").write_text("[log\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ExplorerConfig.from_env(None, {}, config_file=tmp_path / "bad.toml")
