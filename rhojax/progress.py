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
    """Plain-text progress for logs: start and end lines, and a line at least every ``interval`` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.interval = interval
        self.clock = clock

    def _print(self, line: str) -> None:
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        start = last = self.clock()
        self._print(f"[{name}] start: {total} steps")
        state = {"done": 0}

        def update(done: int) -> None:
            nonlocal last
            state["done"] = done
            now = self.clock()
            if now - last >= self.interval and done < total:
                last = now
                eta = (now - start) / done * (total - done) if done else float("nan")
                eta_text = _clock(eta) if done else "unknown"
                self._print(f"[{name}] {done}/{total} done, {_clock(now - start)} elapsed, eta {eta_text}")

        yield update
        self._print(f"[{name}] done: {state['done']}/{total} in {_clock(self.clock() - start)}")


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
