"""The structure driver end to end on a tiny model: every file written, and a rerun resumes."""

from __future__ import annotations

import json

import pytest

from rhojax.commands.structure import StructureSettings, analyze_structure, replacement_spans
from rhojax.errors import RhojaxError
from rhojax.report.jsonio import read_jsonl
from tests.test_structure_helpers import tiny_model, tiny_windows

FILES = ("structure.json", "early_exit.json", "subspaces.json", "fits.json", "ablation.jsonl", "replacement.jsonl",
         "r2_through_depth.png", "overlap_through_depth.png", "easy_tokens_through_depth.png",
         "replacement_perplexity.png", "ablation_loss.png", "early_exit_tradeoff.png")


def test_replacement_spans_cover_every_block_and_the_requested_lengths():
    spans = replacement_spans(6, (2, 4), 2)
    assert spans[:6] == [(t, 1) for t in range(6)]
    assert spans[6:] == [(0, 2), (2, 2), (4, 2), (0, 4), (2, 4)]
    assert all(t + m <= 6 for t, m in spans)


def test_driver_writes_every_result_and_resumes(tmp_path):
    config, params = tiny_model()
    cal, ev = tiny_windows(6, 24, seed=1), tiny_windows(4, 24, seed=2)
    settings = StructureSettings(calibration_tokens=144, evaluation_tokens=96, seq_len=24, k=2, ablate_every=2,
                                 span_lengths=(2,), span_every=2, replace_every=2, batch_size=2)
    summary = analyze_structure(config, params, cal, ev, tmp_path, settings, {"model": "tiny"})
    for name in FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    assert [r["layer"] for r in read_jsonl(tmp_path / "ablation.jsonl")] == [0, 2]
    records = read_jsonl(tmp_path / "replacement.jsonl")
    kinds = sorted((r["method"], r["length"]) for r in records)
    assert kinds == [("chained", 2)] + [("direct", 1)] * 2 + [("direct", 2)]  # blocks 0 and 2 only
    assert len(summary["fits"]) == 5  # R^2 of every span, chained included
    assert summary["scored_tokens"] == 4 * 23
    saved = json.loads((tmp_path / "structure.json").read_text())
    assert len(saved["subspaces"]) == config.num_layers + 1

    analyze_structure(config, params, cal, ev, tmp_path, settings, {"model": "tiny"})  # resumes: nothing redone
    assert len(read_jsonl(tmp_path / "replacement.jsonl")) == len(records)
    assert len(read_jsonl(tmp_path / "ablation.jsonl")) == 2
    with pytest.raises(RhojaxError, match="other settings"):
        analyze_structure(config, params, cal, ev, tmp_path, StructureSettings(k=3), {"model": "tiny"})
