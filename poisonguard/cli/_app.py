"""The typer application and what every command shares: error handling, progress."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from poisonguard.cli.options import normalize_option
from poisonguard.errors import PoisonguardError
from poisonguard.progress import NullProgress, PlainProgress

__all__ = ["app", "command", "err_console", "out_console", "progress_bar", "sub_app"]

def _refuse(exc: click.UsageError, ctx: click.Context) -> None:
    """Print a command line click refused as one line on stderr and exit 2."""
    where = (exc.ctx or ctx).command_path
    err_console.print(f"poisonguard: error: {exc.format_message()} (see '{where} --help')",
                      markup=False, soft_wrap=True)
    raise typer.Exit(2) from None


class _OneLineUsageErrors(TyperGroup):
    """The app's group: a command line click cannot parse (a bad option value, an
    unknown option or command, a missing argument) is one line on stderr and exit 2,
    like the package's own usage errors (:func:`command`), not a boxed usage screen.
    Asking for help with no arguments still shows the help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            _refuse(exc, ctx)
            raise  # unreachable: _refuse exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            _refuse(exc, ctx)
            raise  # unreachable: _refuse exits


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="poisonguard",
    help="Find, explain and remove poisoned rows in training data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    suggest_commands=False,  # click already says "Did you mean ...?"; typer would again
    context_settings={"token_normalize_func": normalize_option},
)


def sub_app(help_text: str) -> typer.Typer:
    """A command group under ``poisonguard`` (``keys``, ``ledger``, ...): help with no
    arguments, and a mistyped command's "Did you mean ...?" said once (by click)."""
    return typer.Typer(help=help_text, no_args_is_help=True, suggest_commands=False)
out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def command(*args: Any, on: typer.Typer | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Like ``app.command`` but a :class:`PoisonguardError` becomes one line and exit 2.

    ``on`` registers the command on a sub-app (``poisonguard ledger verify``).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except PoisonguardError as exc:
                from poisonguard.provenance.text import printable

                err_console.print(f"poisonguard: error: {printable(exc)}", markup=False,
                                  soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err_console.print("poisonguard: interrupted", markup=False)
                raise typer.Exit(130) from None

        (on or app).command(*args, **kwargs)(wrapper)
        return fn

    return decorate


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def update(self, stage: str, *, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task(stage, total=total)
        self._progress.update(self._task, description=stage, completed=done, total=total)


@contextmanager
def progress_bar(enabled: bool = True, mode: str = "auto") -> Iterator[Any]:
    """A progress reporter on stderr.

    ``mode``: "auto" (a bar on a terminal, timestamped lines otherwise), "rich",
    "plain" or "none". Nothing at all when ``enabled`` is False (--quiet, --json).
    """
    if not enabled or mode == "none":
        yield NullProgress()
        return
    if mode == "plain" or (mode == "auto" and not sys.stderr.isatty()):
        yield PlainProgress()
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as progress:
        yield _RichProgress(progress)
