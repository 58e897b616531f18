"""Progress reporting for long work, without printing from the library.

Library studies take a ``progress`` argument (a :class:`Progress`) and wrap each stage of work in
``with progress.stage(name, total) as update: ... update(done)``. :data:`SILENT` reports nothing.
The command line passes :class:`ConsoleProgress`: rich bars with an ETA on a terminal, and plain
lines when the output is a file or a pipe (one when a stage starts and ends, and one at least every
``interval`` seconds with done/total and the ETA), so that logs of long runs show life.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO


class Progress(Protocol):
    def stage(self, name: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A context manager yielding ``update(done)`` for a stage of ``total`` units."""


class _Silent:
    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda done: None


SILENT: Progress = _Silent()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class LineProgress:
    """Plain-text progress for logs: start and end lines, and a status line every ``interval`` seconds
    while a stage runs (from a timer thread, so a long step without updates still shows life)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 30.0):
        self.stream = stream
        self.interval = interval

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        start = time.monotonic()
        state = {"done": 0}
        stop = threading.Event()

        def status() -> str:
            elapsed = time.monotonic() - start
            done = state["done"]
            eta = _clock(elapsed / done * (total - done)) if done else "unknown"
            return f"[{name}] {done}/{total} done, {_clock(elapsed)} elapsed, eta {eta}"

        def tick() -> None:
            while not stop.wait(self.interval):
                self._print(status())

        self._print(f"[{name}] start: {total} steps")
        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield lambda done: state.__setitem__("done", done)
        finally:
            stop.set()
            ticker.join()
        self._print(f"[{name}] done: {state['done']}/{total} in {_clock(time.monotonic() - start)}")


class RichProgress:
    """Rich progress bars with elapsed time and ETA, for a terminal."""

    def __init__(self, console) -> None:
        self.console = console

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as bars:
            task = bars.add_task(name, total=total)
            yield lambda done: bars.update(task, completed=done)


def console_progress(console, stream: TextIO | None = None) -> Progress:
    """Rich bars when ``stream`` (stderr by default) is a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    return RichProgress(console) if stream.isatty() else LineProgress(stream)
