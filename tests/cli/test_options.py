"""Shared options: one spelling in --help, old spellings still accepted."""

from __future__ import annotations

import click
import typer
from typer.testing import CliRunner

from poisonguard.cli import app


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...],
                                                                       click.Command]:
    found: dict[tuple[str, ...], click.Command] = {}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found.update(_commands(cmd, (*prefix, name)))
        else:
            found[(*prefix, name)] = cmd
    return found


def test_id_column_has_one_visible_spelling_and_the_old_one_still_works() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    with_id = {path: cmd for path, cmd in _commands(root).items()
               if any(p.name == "id_column" for p in cmd.params)}
    assert {("scan",), ("clean",), ("report",), ("snapshot",), ("attack",)} <= set(with_id)
    for path, cmd in with_id.items():
        option = next(p for p in cmd.params if p.name == "id_column")
        assert option.opts == ["--id"], path  # every command spells it the same way
        parent = click.Context(root, info_name="poisonguard",
                               token_normalize_func=root.context_settings.get(
                                   "token_normalize_func"))
        args = [*path[1:], "x"] if len(path) > 1 else ["x"]
        for spelling in ("--id", "--id-column", "--id-column=row_id"):
            value = ["row_id"] if "=" not in spelling else []
            ctx = cmd.make_context(path[-1], [*args, spelling, *value], parent=parent,
                                   resilient_parsing=True)
            assert ctx.params["id_column"] == "row_id", (path, spelling)
    page = CliRunner().invoke(app, ["scan", "--help"], env={"COLUMNS": "200"}).output
    assert "--id " in page and "--id-column" not in page
