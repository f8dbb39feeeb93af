"""Human output on stderr (stdout stays clean for --json): one-line errors, warnings, progress.

Messages are printed as plain text, never parsed as rich markup: they carry team names, file
names and generator output, which a team controls. Style comes only from the fixed prefixes.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from .text import plain

console = Console(stderr=True, highlight=False)
MESSAGE_LIMIT = 2000
_prefix = ""  # e.g. "[rank 1/4] " when several processes share a terminal


def set_prefix(prefix: str) -> None:
    global _prefix
    _prefix = prefix


def _say(label: str, style: str, message: object) -> None:
    line = Text(_prefix)
    if label:
        line.append(label, style=style).append(" ")
    line.append(plain(message, MESSAGE_LIMIT), style=None if label else style)
    console.print(line, soft_wrap=True)


def error(message: object) -> None:
    _say("error:", "bold red", message)


def warn(message: object) -> None:
    _say("warning:", "yellow", message)


def info(message: object, style: str | None = None) -> None:
    _say("", style or "", message)


def interactive() -> bool:
    """A person watches a terminal (a progress bar shows); else output goes to a log or CI."""
    return console.is_terminal and not _prefix


def run_line(message: object) -> None:
    """A finished training run: a line in a log (where no progress bar shows), quiet on a terminal."""
    if not interactive():
        info(message)


@contextmanager
def pass_progress(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over training passes, on a terminal; yields the evaluator's on_pass callback."""
    if not enabled or not interactive():
        yield lambda _done, _total: None
        return
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(plain(_prefix + description, 80), total=total)
        yield lambda _done, _total: progress.advance(task)
