"""A live progress bar on stderr (rich), shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressBar"]


class ProgressBar(AbstractContextManager["ProgressBar"]):
    """``advance(ok)`` after each campaign; a no-op when disabled or stderr is not a tty."""

    def __init__(self, total: int | None, *, enabled: bool = True, label: str = "campaigns"):
        console = Console(stderr=True)
        self.enabled = enabled and sys.stderr.isatty()
        self.failed = 0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not self.enabled,
        )
        self._task = self._progress.add_task(label, total=total, failed=0)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def advance(self, ok: bool, **_: Any) -> None:
        if not ok:
            self.failed += 1
        self._progress.update(self._task, advance=1, failed=self.failed)
