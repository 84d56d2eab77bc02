"""Rich progress bars for the CLI: one bar per stage, with the latest metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
