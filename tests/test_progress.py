"""Progress in logs: a start line, a status line at least every interval even without updates, an end line."""

from __future__ import annotations

import io
import re
import time

from rhojax.progress import LineProgress, console_progress


def test_line_progress_prints_status_lines_while_a_stage_runs():
    stream = io.StringIO()
    progress = LineProgress(stream, interval=0.05)
    with progress.stage("work", 4) as update:
        update(1)
        time.sleep(0.3)  # no update for several intervals: the timer still reports
        update(3)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[work] start: 4 steps"
    status = [line for line in lines[1:-1] if re.fullmatch(r"\[work\] 1/4 done, 0:00 elapsed, eta 0:0\d", line)]
    assert len(status) >= 3
    assert lines[-1] == "[work] done: 3/4 in 0:00"


def test_console_progress_uses_lines_when_not_a_terminal():
    assert isinstance(console_progress(None, io.StringIO()), LineProgress)
