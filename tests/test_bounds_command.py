"""``rhojax bounds`` on the real SmolLM2 (two levels, few tokens): counts, no violations, resume."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rhojax.bounds.summary import QUANTILES
from rhojax.cli import app
from rhojax.commands.bounds import parse_shard, run_bounds, summary_table
from rhojax.errors import RhojaxError
from rhojax.report.jsonio import read_jsonl


@pytest.mark.slow
def test_run_bounds_on_smollm2_counts_resumes_and_finds_no_violation(smollm2, tmp_path):
    settings = dict(plan_name="quick", tokens=128, seq_len=64, check_tokens=16)
    summary = run_bounds(smollm2, tmp_path, **settings)
    assert summary["configurations"] == 2 * len(smollm2.config.sites) == 420
    assert summary["violations"] == 0, summary["violating_rows"]
    assert summary["by_method"]["rtn"]["configurations"] == 210
    for name in ("weight_perturbation", "two_matrix_chain", "lipschitz_activation_chain", "residual_block",
                 "product_propagation", "magnitude_pruning_frobenius", "rtn_rounding_bound", "rtn_frobenius_bound"):
        tightness = summary["theorems"][name]["tightness"]
        assert set(QUANTILES) <= set(tightness) and tightness["min"] >= 1 - 1e-6, name
    assert json.loads((tmp_path / "summary.json").read_text())["configurations"] == 420
    assert summary_table(summary).row_count == len(summary["theorems"])
    lines = len(read_jsonl(tmp_path / "checks.jsonl"))
    assert run_bounds(smollm2, tmp_path, **settings)["configurations"] == 420  # resumed: nothing recomputed
    assert len(read_jsonl(tmp_path / "checks.jsonl")) == lines == 2


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
    result = CliRunner().invoke(app, ["bounds", "smollm2-135m", "--sites", "--site-plan", "huge",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and "'huge' is not a site plan" in result.output
    result = CliRunner().invoke(app, ["bounds", "smollm2-135m", "--sites", "--sweep", str(tmp_path / "none.jsonl"),
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--sweep" in result.output
