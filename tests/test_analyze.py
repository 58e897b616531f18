"""The main job end to end, as a user runs it: a subprocess on the packaged model, its report validated
against the published schema and rendered in a real browser; then, on a small random llama saved as a
Hugging Face folder (same code paths, seconds per study), a run killed and resumed compared byte for
byte with a clean run.

The runs use ``--budget smoke`` (every study, budgets of minutes: the numbers are too noisy to read).
Compared runs use the same relative ``--out`` from different working folders, so their command lines
and hence their reports can be compared byte for byte; only the ``timings`` field may differ.
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
RHOJAX = str(Path(sys.executable).parent / "rhojax")


def _command(model: str) -> list[str]:
    return [RHOJAX, "analyze", model, "--budget", "smoke", "--out", "run"]


def _run(cwd: Path, model: str = "smollm2-135m") -> subprocess.CompletedProcess:
    return subprocess.run(_command(model), cwd=cwd, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """One uninterrupted run on the packaged SmolLM2 in a fresh folder; returns the run folder."""
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


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> str:
    """A 4-layer random llama with SmolLM2's tokenizer, saved as a Hugging Face folder."""
    from tests.tiny_models import save_tiny_llama, tiny_llama_config

    config = tiny_llama_config(num_layers=4, hidden_size=32, num_heads=4, num_kv_heads=2, intermediate_size=64)
    return str(save_tiny_llama(tmp_path_factory.mktemp("small") / "model", config))


def test_killed_run_resumes_without_recomputing_and_equals_a_clean_run(small_model, tmp_path):
    clean_dir, killed_dir = tmp_path / "clean", tmp_path / "killed"
    clean_dir.mkdir()
    killed_dir.mkdir()
    clean = _run(clean_dir, small_model)
    assert clean.returncode == 0, clean.stderr[-3000:]
    process = subprocess.Popen(_command(small_model), cwd=killed_dir, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    parts = killed_dir / "run" / "sensitivity" / "parts"
    deadline = time.monotonic() + 900
    while not parts.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)  # mid-way: two studies finished, the third started
    process.wait()
    assert process.returncode == -signal.SIGKILL
    before = {p: p.stat().st_mtime_ns for p in (killed_dir / "run").rglob("parts/*.json")}
    assert before and not (killed_dir / "run" / "report.json").exists()

    resumed = _run(killed_dir, small_model)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished parts were not recomputed
    first, second = clean_dir / "run" / "report.json", killed_dir / "run" / "report.json"
    assert _without_timings(second) == _without_timings(first)
    text = lambda p: re.sub(r'"timings": \{.*?\n  \}', "", p.read_text(), flags=re.S)  # noqa: E731
    assert text(second) == text(first)  # byte for byte, timings aside


def test_unknown_budget_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["analyze", "smollm2-135m", "--out", str(tmp_path), "--budget", "huge"])
    assert result.exit_code == 2
    assert "budget 'huge': choose one of smoke, quick, standard, paper" in result.output
    assert "Traceback" not in result.output
