"""The structure study end to end on a tiny model: every part and figure written, a rerun resumes without
recomputing, and a rerun with other settings is refused naming the key."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.errors import RhojaxError
from rhojax.report.structure_figures import draw_structure_figures
from rhojax.runs import RunFolder, RunFolderError
from rhojax.structure.study import StructureSettings, replacement_spans, structure_study
from tests.test_depth_cli import tiny_folder  # noqa: F401 - the tiny HF folder fixture
from tests.test_structure_helpers import tiny_model, tiny_windows

PARTS = ("early_exit", "subspaces", "fits", "ablation_0", "ablation_2", "replacement_direct_0_1",
         "replacement_direct_2_1", "replacement_direct_0_2", "replacement_chained_0_2")
FIGURES = ("r2_through_depth.png", "overlap_through_depth.png", "easy_tokens_through_depth.png",
           "replacement_perplexity.png", "ablation_loss.png", "early_exit_tradeoff.png")


def test_replacement_spans_cover_every_block_and_the_requested_lengths():
    spans = replacement_spans(6, (2, 4), 2)
    assert spans[:6] == [(t, 1) for t in range(6)]
    assert spans[6:] == [(0, 2), (2, 2), (4, 2), (0, 4), (2, 4)]
    assert all(t + m <= 6 for t, m in spans)


def test_study_writes_every_part_resumes_and_refuses_other_settings(tmp_path):
    config, params = tiny_model()
    cal, ev = tiny_windows(6, 24, seed=1), tiny_windows(4, 24, seed=2)
    settings = StructureSettings(calib_tokens=144, tokens=96, seq_len=24, k=2, ablate_every=2, spans=(2,),
                                 span_every=2, replace_every=2, batch_size=2)
    run = RunFolder.open(tmp_path, settings)
    summary = structure_study(config, params, cal, ev, run, settings)
    assert sorted(run.parts()) == sorted(PARTS)
    assert [r["layer"] for r in summary["ablation"]] == [0, 2]
    kinds = sorted((r["method"], r["length"]) for r in summary["replacement"])
    assert kinds == [("chained", 2)] + [("direct", 1)] * 2 + [("direct", 2)]  # blocks 0 and 2 only
    assert len(summary["fits"]) == 5  # R^2 of every span, chained included
    assert summary["scored_tokens"] == 4 * 23
    assert len(summary["subspaces"]) == config.num_layers + 1
    assert summary["dense_perplexity"] == pytest.approx(np.exp(summary["early_exit"]["lens_mean_nll"][-1]))
    paths = draw_structure_figures(tmp_path, summary)
    assert sorted(p.name for p in paths) == sorted(FIGURES)
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 0, name

    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json")}
    (tmp_path / "parts" / "replacement_direct_2_1.json").unlink()  # as if killed while it was in flight
    again = structure_study(config, params, cal, ev, RunFolder.open(tmp_path, settings), settings)
    assert json.dumps(again, sort_keys=True) == json.dumps(summary, sort_keys=True)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json")}
    assert set(after) == set(stamps)
    assert {k: v for k, v in after.items() if k != "replacement_direct_2_1.json"} == \
        {k: v for k, v in stamps.items() if k != "replacement_direct_2_1.json"}

    with pytest.raises(RunFolderError, match="k: 2 -> 3"):
        RunFolder.open(tmp_path, StructureSettings(**{**settings.__dict__, "k": 3}))


def test_settings_errors_name_the_argument():
    with pytest.raises(RhojaxError, match="replace_every 0 must be >= 1"):
        StructureSettings(replace_every=0)


def test_command_reads_its_options_from_the_settings_and_refuses_other_settings(tmp_path, tiny_folder):  # noqa: F811
    args = ["structure", str(tiny_folder), "--out", str(tmp_path), "--calib-tokens", "128", "--tokens", "128",
            "--seq-len", "64", "--k", "2", "--spans", "2", "--span-every", "2", "--ablate-every", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "structure.json").read_text())
    assert saved["settings"]["spans"] == [2] and saved["evaluation_windows"] == [2, 64]
    assert (tmp_path / "replacement_perplexity.png").stat().st_size > 0
    again = CliRunner().invoke(app, [*args[:-1], "1"])
    assert again.exit_code == 2 and "ablate_every: 0 -> 1" in again.output
