"""Progress and end-of-job summaries, drawn on the driver.

On a terminal: a rich progress bar on stderr. Elsewhere (CI logs, ``ray job submit``): one plain
line on stderr every ``plain_every_s`` seconds (also while nothing finishes, such as during a model
batch), and the final count at the end, so long work shows it is alive.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

__all__ = ["JobProgress", "console", "print_summary", "progress_bar"]

console = Console(stderr=True, highlight=False)


class JobProgress:
    """Counts done items of one job step and shows it."""

    def __init__(self, description: str, total: int | None, plain_every_s: float = 3.0):
        self.description, self.total, self.done = description, total, 0
        self._plain_every_s, self._last_plain = plain_every_s, float("-inf")  # the first item prints at once
        self._rich: Progress | None = None
        self._status, self._printed, self._started = "", -1, time.monotonic()
        self._lock = threading.Lock()
        if sys.stderr.isatty():
            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._rich.add_task(description, total=total, status="")

    def set_total(self, total: int | None) -> None:
        """The number of items, once it is known (a plan finished after the bar was drawn)."""
        if total != self.total:
            self.total = total
            if self._rich is not None:
                self._rich.update(self._task, total=total)

    def advance(self, n: int = 1, status: str = "") -> None:
        self.done += n
        self._status = status or self._status
        if self._rich is not None:
            self._rich.update(self._task, advance=n, status=status)
        else:
            self._plain()

    def _plain(self, force: bool = False) -> None:
        """The plain line, when ``plain_every_s`` passed since the last one (or ``force``)."""
        with self._lock:
            if not force and time.monotonic() - self._last_plain < self._plain_every_s:
                return
            self._last_plain, self._printed = time.monotonic(), self.done
            total = f"/{self.total}" if self.total is not None else ""
            elapsed = time.monotonic() - self._started
            print(f"{self.description}: {self.done}{total} [{elapsed:.0f} s] {self._status}".rstrip(), file=sys.stderr,
                  flush=True)

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self._plain_every_s / 3):
            self._plain()


@contextmanager
def progress_bar(description: str, total: int | None, plain_every_s: float = 3.0) -> Iterator[JobProgress]:
    bar = JobProgress(description, total, plain_every_s)
    if bar._rich is None:
        stop = threading.Event()
        ticker = threading.Thread(target=bar._tick, args=(stop,), name="vidlake-progress", daemon=True)
        ticker.start()
        try:
            yield bar
        finally:
            stop.set()
            ticker.join()
            if bar.done != bar._printed:
                bar._plain(force=True)
        return
    with bar._rich:
        yield bar


def print_summary(title: str, rows: list[tuple[str, object]]) -> None:
    """A two-column summary table on stdout."""
    out = Console(highlight=False)
    out.print(f"[bold]{title}[/]")
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, f"{value:.2f}" if isinstance(value, float) else str(value))
    out.print(table)
