"""``python -m benchmarks --quick`` end to end on a tiny random model: the data file and the tables it renders.

Structure only: timings on a shared test machine are not asserted.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.flops import forward_flops, sweep_flop_ceiling
from benchmarks.models import SHAPES
from benchmarks.report import benchmarks_section, profile_cost_section, render_tables
from benchmarks.run import main


def test_quick_run_writes_every_section_and_renders_its_tables(tmp_path, capsys):
    out = tmp_path / "benchmarks_test.json"
    assert main(["--quick", "--model", "random:tiny", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["provenance"]["commit"] and data["wall_seconds"] > 0 and data["settings"]["quick"]
    assert data["peak"]["gflops"] > 0 and len(data["peak"]["shapes"]) == 3
    (fwd,) = data["forward"]
    assert fwd["tokens"] == 2 * 64 and fwd["rhojax_seconds"] > 0 and "speedup_vs_torch" in fwd
    assert fwd["max_last_logit_difference"] < 1e-3  # the PyTorch side runs the same weights
    (row,) = data["profile"]["rows"]
    assert row["versions"] == "aggregate" and row["speedup_vs_torch"] > 0 and data["profile"]["hooks"]["speedup"] > 0
    sweep = data["sweep"]
    assert sweep["configurations"] == 4 and sweep["layers"] == [0, 2]
    assert sweep["max_ppl_ratio_relative_difference"] < 1e-3  # same pruning, same perplexity ratios
    assert sweep["fraction_of_ceiling"] == sweep["speedup_vs_naive"] / sweep["flop_ceiling"]
    by_batch = sweep["seconds_by_config_batch"]  # quick mode's two kinds: batches 1 and 2, the fastest reported
    assert set(by_batch) == {"1", "2"} and sweep["rhojax_seconds"] == min(by_batch.values())
    assert by_batch[str(sweep["config_batch"])] == sweep["rhojax_seconds"]
    assert "profile_cost" not in data  # random weights have no tokenizer and corpus
    goals = {g["goal"]: g for g in data["goals"]}
    assert {"forward 2 x 64 tokens: fraction of matmul peak", "profile (aggregate): vs PyTorch same algorithm",
            "sweep: fraction of the prefix-caching FLOP ceiling"} <= set(goals)
    assert all(g["met"] == (g["gap"] == "") for g in goals.values())
    printed = capsys.readouterr().out
    assert render_tables(data) in printed
    section = benchmarks_section({"benchmarks_test": data, "other": {}})
    assert section.startswith("### test") and "hook-based baseline" in section and "FLOP ceiling" in section
    assert section.count("\n| forward with logits, 2 x 64 tokens |") == 1
    assert profile_cost_section({"benchmarks_test": data}).startswith("No data yet")

    # --update re-measures one section into the same file and keeps the others as measured
    assert main(["--quick", "--model", "random:tiny", "--out", str(out), "--update", "--only", "peak"]) == 0
    updated = json.loads(out.read_text())
    assert updated["sweep"] == data["sweep"] and updated["provenance"] == data["provenance"]
    assert updated["peak"] != data["peak"] and [u["sections"] for u in updated["updates"]] == [["peak"]]
    assert "Re-measured later in a run of its own: peak" in benchmarks_section({"benchmarks_test": updated})
    with pytest.raises(SystemExit, match="other settings .*seed"):
        main(["--quick", "--model", "random:tiny", "--out", str(out), "--update", "--only", "peak", "--seed", "1"])


def test_flop_counts_by_hand():
    c = SHAPES["tiny"]  # D 32, F 64, q 32, kv 16, 3 layers, vocab 128, 4 heads of 8
    block = 32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 64
    attention = 2 * 4 * 8 * 10 * 11
    assert forward_flops(c, 1, 10) == 3 * (2 * 10 * block + attention) + 2 * 10 * 32 * 128
    assert sweep_flop_ceiling(c, [0]) == 1.0
    assert sweep_flop_ceiling(c, [2]) == (3 * block + 32 * 128) / (block + 32 * 128)
