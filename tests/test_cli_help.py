"""Every command documents its exit status in ``--help`` (issue 9 §6)."""

from __future__ import annotations

import argparse

import pytest

from teelog.cli import EXIT_STATUS, build_parser


def _commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                path = f"{prefix} {name}".strip()
                found[path] = child
                found.update(_commands(child, path))
    return found


COMMANDS = _commands(build_parser())


def test_every_command_has_a_documented_exit_status_and_no_stale_entry_is_left():
    assert set(COMMANDS) | {"teelog"} == set(EXIT_STATUS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_ends_with_the_exit_status_of_the_command(command):
    text = COMMANDS[command].format_help()
    tail = text[text.index("exit status:") :]
    codes = [code for code, _ in EXIT_STATUS[command]]
    assert 0 in codes and 2 in codes
    for code, meaning in EXIT_STATUS[command]:
        assert f"\n  {code}  {meaning.split()[0]}" in tail


def test_top_level_help_names_the_exit_status_too():
    assert "exit status:\n  0  success" in build_parser().format_help()
