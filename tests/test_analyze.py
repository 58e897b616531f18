"""The main job's wiring: step selection, its error, and the info step's output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rhojax.cli import app


def test_unknown_step_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["analyze", "smollm2-135m", "--out", str(tmp_path), "--steps", "info,nope"])
    assert result.exit_code == 2
    assert "unknown step(s) nope" in result.output and "Traceback" not in result.output


def test_info_step_writes_summary_with_the_scored_token_count(tmp_path):
    result = CliRunner().invoke(
        app, ["analyze", "smollm2-135m", "--out", str(tmp_path), "--steps", "info", "--tokens", "512"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["perplexity"]["scored_tokens"] == 511
    assert summary["info"]["layers"] == 30 and summary["model"] == "smollm2-135m"
