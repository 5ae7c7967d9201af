"""A progress bar on stderr that appears only for runs longer than a second."""

from __future__ import annotations

import sys
import time
from types import TracebackType

__all__ = ["FeatureProgress"]


class FeatureProgress:
    """Counts features done; shows a rich bar on a terminal once a second has passed.

    Silent when stderr is not a terminal or when ``enabled`` is False (``--quiet``).
    """

    def __init__(self, total: int, description: str, *, enabled: bool = True) -> None:
        self.total = total
        self.description = description
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()
        self.done = 0
        self._progress = None
        self._task = None

    def __enter__(self) -> FeatureProgress:
        return self

    def __call__(self, n_done: int) -> None:
        self.done += n_done
        if not self.enabled:
            return
        if self._progress is None and time.monotonic() - self.started > 1.0:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._progress = Progress(  # type: ignore[assignment]
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )
            self._progress.start()  # type: ignore[attr-defined]
            self._task = self._progress.add_task(self.description, total=self.total)  # type: ignore[attr-defined]
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
