"""``rhojax bounds`` on the real SmolLM2 (two levels, few tokens): counts, no violations, resume, refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rhojax.bounds.study import BoundsSettings, run_bounds_study
from rhojax.bounds.summary import QUANTILES
from rhojax.cli import app
from rhojax.commands.bounds import parse_shard, summary_table
from rhojax.errors import RhojaxError
from rhojax.runs import RunFolder
from rhojax.settings import run_identity


@pytest.mark.slow
def test_bounds_study_on_smollm2_counts_resumes_and_finds_no_violation(smollm2, tmp_path):
    settings = BoundsSettings(plan="quick", tokens=128, seq_len=64, check_tokens=16, site_plan="")
    run = RunFolder.open(tmp_path, run_identity(smollm2, settings))
    summary = run_bounds_study(smollm2, run, settings)["checker"]
    assert summary["configurations"] == 2 * len(smollm2.config.sites) == 420
    assert summary["violations"] == 0, summary["violating_rows"]
    assert summary["by_method"]["rtn"]["configurations"] == 210
    for name in ("weight_perturbation", "two_matrix_chain", "lipschitz_activation_chain", "residual_block",
                 "product_propagation", "magnitude_pruning_frobenius", "rtn_rounding_bound", "rtn_frobenius_bound"):
        tightness = summary["theorems"][name]["tightness"]
        assert set(QUANTILES) <= set(tightness) and tightness["min"] >= 1 - 1e-6, name
    assert summary_table(summary, "smollm2-135m").row_count == len(summary["theorems"])
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "parts").iterdir()}
    assert len(stamps) == 2  # one part per level
    again = run_bounds_study(smollm2, RunFolder.open(tmp_path, run_identity(smollm2, settings)), settings)
    assert again["checker"] == summary  # resumed: read back, nothing recomputed
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "parts").iterdir()} == stamps
    other = BoundsSettings(plan="quick", tokens=256, seq_len=64, check_tokens=16, site_plan="")
    with pytest.raises(RhojaxError, match=r"settings.tokens: 128 -> 256"):
        RunFolder.open(tmp_path, run_identity(smollm2, other))


def test_bad_plan_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["bounds", "smollm2-135m", "--plan", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--plan 'huge'" in result.output


def test_shard_parsing():
    assert parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "x", "1/0", "-1/3"):
        with pytest.raises(RhojaxError, match="--shard"):
            parse_shard(bad)


def test_bad_site_plan_and_missing_sweep_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(app, ["bounds", "smollm2-135m", "--site-plan", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "'huge' is not a site plan" in result.output
    result = CliRunner().invoke(app, ["bounds", "smollm2-135m", "--sweep", str(tmp_path / "none.jsonl"),
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--sweep" in result.output
