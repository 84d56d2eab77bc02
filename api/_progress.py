"""The CLI's console: rich progress bars (one per stage, with the latest metrics), and
one-line errors for what a user caused."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


class StageBars:
    """``update(stage, done, total, metrics)`` draws (or advances) the bar for ``stage``."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def update(self, stage: str, done: int, total: int, metrics: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total, metrics=text)
        self._progress.update(self._tasks[stage], completed=done, total=total, metrics=text)


@contextmanager
def stage_bars() -> Iterator[StageBars]:
    progress = Progress(
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
    )
    with progress:
        yield StageBars(progress)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show a user-caused error (``ValueError``, or a service error such as a refused
    promotion) as one red line and exit with status 2."""
    from worker.errors import ServiceError

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ValueError, ServiceError) as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None

    return wrapper
