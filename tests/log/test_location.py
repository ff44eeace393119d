"""Where the data lives: --data/--database/--objects, TEELOG_* overrides, [log] table, XDG."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from teelog.attestation.config_table import ConfigError, find_config_file
from teelog.log.location import LocationError, default_data_dir, resolve_location

PG = "postgresql+psycopg://postgres@127.0.0.1:55432/postgres"


def test_default_data_dir_is_under_xdg_data_home_not_the_cwd(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert resolve_location(environ=env).data_dir == tmp_path / "xdg" / "teelog"


def test_default_data_dir_falls_back_to_local_share_for_a_relative_xdg_data_home(
    tmp_path: Path,
) -> None:
    env = {"XDG_DATA_HOME": "relative/dir", "HOME": str(tmp_path)}
    assert default_data_dir(env) == tmp_path / ".local" / "share" / "teelog"


def test_command_line_beats_environment_beats_config_table(tmp_path: Path) -> None:
    table = {"data": "from-table", "database": "sqlite:///t.db", "objects": "objs"}
    env = {"TEELOG_DATA": str(tmp_path / "env"), "TEELOG_DATABASE": PG}
    loc = resolve_location(table=table, base=tmp_path, environ=env)
    assert loc.data_dir == tmp_path / "env"
    assert loc.database_url == PG
    assert loc.objects_url == str(tmp_path / "objs")  # relative to the config file
    loc = resolve_location(
        data=tmp_path / "cli", database="sqlite:///c.db", objects="s3://bucket/log",
        table=table, base=tmp_path, environ=env,
    )
    assert (loc.data_dir, loc.database_url, loc.objects_url) == (
        tmp_path / "cli", "sqlite:///c.db", "s3://bucket/log"
    )


def test_table_data_is_relative_to_the_config_file(tmp_path: Path) -> None:
    loc = resolve_location(table={"data": "d"}, base=tmp_path, environ={})
    assert loc.data_dir == tmp_path / "d"
    assert loc.database_url is None and loc.objects_url is None


def test_old_database_url_variable_is_still_read(tmp_path: Path) -> None:
    loc = resolve_location(data=tmp_path, environ={"TEELOG_DATABASE_URL": PG})
    assert loc.database_url == PG


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database": "mysql://h/db"}, "--database: unsupported database 'mysql'"),
        ({"database": "not a url"}, "--database: not a database URL"),
        ({"objects": "s3://"}, "--objects: expected s3://bucket/prefix"),
        ({"objects": "s3://key:secret@bucket/p"}, "--objects: expected s3://bucket/prefix"),
        ({"objects": "gs://bucket/p"}, "--objects: unsupported object store scheme 'gs'"),
    ],
)
def test_bad_command_line_values_are_refused_naming_the_option(
    tmp_path: Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(LocationError, match=re.escape(message)):
        resolve_location(data=tmp_path, environ={}, **kwargs)


def test_bad_values_from_environment_and_table_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(LocationError, match=r"\$TEELOG_OBJECTS: unsupported"):
        resolve_location(data=tmp_path, environ={"TEELOG_OBJECTS": "ftp://x/y"})
    with pytest.raises(LocationError, match=r"log\.database: expected a database URL"):
        resolve_location(table={"database": 5}, base=tmp_path, environ={})
    with pytest.raises(LocationError, match=r"log\.datadir: unknown key"):
        resolve_location(table={"datadir": "x"}, base=tmp_path, environ={})


def test_config_file_search_order(tmp_path: Path) -> None:
    xdg = tmp_path / "cfg"
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path)}
    assert find_config_file(None, env) is None  # the XDG default is optional
    default = xdg / "teelog" / "teelog.toml"
    default.parent.mkdir(parents=True)
    default.write_text("")
    assert find_config_file(None, env) == default
    named = tmp_path / "named.toml"
    named.write_text("")
    assert find_config_file(None, {**env, "TEELOG_CONFIG": str(named)}) == named
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("")
    assert find_config_file(explicit, {**env, "TEELOG_CONFIG": str(named)}) == explicit


def test_a_named_config_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config: no such file"):
        find_config_file(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match=r"\$TEELOG_CONFIG: no such file"):
        find_config_file(None, {"TEELOG_CONFIG": str(tmp_path / "nope.toml")})
