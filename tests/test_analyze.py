"""The main job end to end, as a user runs it: a subprocess on the packaged model, its report validated
against the published schema, rendered in a real browser, killed and resumed, and compared run to run.

The runs use ``--budget smoke`` (same studies and code paths as ``quick``, minutes-long budgets).
Both runs use the same relative ``--out`` from different working folders, so their command lines and
hence their reports can be compared byte for byte; only the ``timings`` field may differ.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rhojax.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("analyze")]
SCHEMA = Path(__file__).resolve().parent.parent / "rhojax" / "report" / "report.schema.json"
COMMAND = [str(Path(sys.executable).parent / "rhojax"), "analyze", "smollm2-135m", "--budget", "smoke", "--out", "run"]


def _run(cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(COMMAND, cwd=cwd, capture_output=True, text=True, timeout=1200, **kwargs)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """One uninterrupted run in a fresh folder; returns the run folder."""
    cwd = tmp_path_factory.mktemp("clean")
    result = _run(cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"\[sensitivity sweep \(\d+ configurations\)\] start", result.stderr)  # progress in logs
    return cwd / "run"


def _without_timings(path: Path) -> dict:
    report = json.loads(path.read_text())
    report.pop("timings")
    return report


def test_report_matches_its_schema(clean_run):
    import jsonschema

    report = json.loads((clean_run / "report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    assert report["model"]["model"] == "smollm2-135m" and report["budget"] == "smoke"
    for files in report["figures"].values():
        for name in files:
            assert (clean_run / name).is_file()


def test_report_html_renders_every_figure_in_chromium(clean_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from PIL import Image

    page = (clean_run / "report.html").resolve()
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    report = json.loads((clean_run / "report.json").read_text())
    expected = sum(len(v) for v in report["figures"].values())
    assert expected > 0 and f'data-figures="ok {expected}"' in dom  # the browser decoded every image
    shot = tmp_path / "page.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # text and figures, not a blank page
    for encoded in re.findall(r'src="data:image/png;base64,([^"]+)"', text):
        figure = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("L"), dtype=float)
        assert figure.shape[0] > 100 and figure.std() > 5  # each figure draws something


def test_killed_run_resumes_without_recomputing_and_equals_a_clean_run(clean_run, tmp_path):
    process = subprocess.Popen(COMMAND, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "run" / "profile" / "parts"
    deadline = time.monotonic() + 900
    while len(list(parts.glob("*.json"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # mid-way through the profile study
    process.wait()
    assert process.returncode == -signal.SIGKILL
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("parts/*.json")}
    assert before and not (tmp_path / "run" / "report.json").exists()

    resumed = _run(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished parts were not recomputed
    assert _without_timings(tmp_path / "run" / "report.json") == _without_timings(clean_run / "report.json")
    text = lambda p: re.sub(r'"timings": \{.*?\n  \}', "", p.read_text(), flags=re.S)  # noqa: E731
    assert text(tmp_path / "run" / "report.json") == text(clean_run / "report.json")  # byte for byte


def test_unknown_budget_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["analyze", "smollm2-135m", "--out", str(tmp_path), "--budget", "huge"])
    assert result.exit_code == 2
    assert "budget 'huge': choose one of smoke, quick, standard, paper" in result.output
    assert "Traceback" not in result.output
