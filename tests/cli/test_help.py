"""Every command's --help: flags show as flags, without a type as if they took a value."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner

from newsletter.cli.main import app
from tests.support.process import clean_environment, newsletter

Command = TyperCommand | TyperGroup


def commands(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Each command of the tree with the words that run it, the root first."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_no_flag_shows_a_type_in_any_help() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    tree = list(commands(root))
    assert len(tree) > 20  # the walk reached the subcommands
    flags_seen = 0
    for path, command in tree:
        shown = help_of(*path)
        assert "<bool>" not in shown, (path, shown)
        for param in command.params:
            if isinstance(param, TyperOption) and param.is_flag and not param.hidden:
                flags_seen += 1
                # The option, then straight to its help: no metavar column in between.
                assert re.search(
                    rf"{re.escape(param.opts[0])}\s+{re.escape((param.help or '')[:20])}", shown
                ), (
                    path,
                    param.opts,
                    shown,
                )
        assert re.search(r"--help\s+Show this message and exit", shown), path
    assert flags_seen > 10


def test_send_lists_dry_run_as_a_flag() -> None:
    shown = help_of("send")
    assert re.search(r"--dry-run\s+Render and count", shown), shown
    assert re.search(r"--to\s+<str>\s+Send one test copy", shown), shown  # options keep their type


def test_a_value_after_a_flag_is_named_as_the_mistake_it_is(tmp_path: Path) -> None:
    result = newsletter("send", "--dry-run", "true", cwd=tmp_path, env=clean_environment())
    assert result.returncode == 2
    assert "unknown newsletter 'true'" in result.stderr and "a flag takes no value" in result.stderr


def test_no_description_carries_a_stray_line_break() -> None:
    """Typer's rich help keeps single line breaks: each paragraph of a command's description
    must be one line, or `--help` and the command list break it mid-sentence."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for path, command in commands(root):
        for paragraph in (command.help or "").strip().split("\n\n"):
            assert "\n" not in paragraph.strip(), (path, paragraph)
