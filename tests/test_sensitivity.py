"""The sweep engine against a naive full forward per configuration, resume after a kill, summaries."""

from __future__ import annotations

import itertools
import json
import math
import runpy
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhojax.compress import calibration_stats, compress_matrix
from rhojax.errors import RhojaxError
from rhojax.eval.perplexity import perplexity
from rhojax.models import ModelConfig, forward, init_params
from rhojax.sensitivity.grid import Configuration, parse_levels, sweep_grid
from rhojax.sensitivity.summary import (
    compression_fragility_index,
    hierarchy,
    kendall_tau,
    ratio_map,
    spread,
)
from rhojax.sensitivity.sweep import rotation_key, run_sweep
from rhojax.sensitivity.uniform import compress_all

CONFIG = ModelConfig("llama", vocab_size=61, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=48, norm_eps=1e-5)


@pytest.fixture(scope="module")
def model():
    params = init_params(CONFIG, jax.random.PRNGKey(0), scale=0.25)
    rng = np.random.default_rng(0)
    eval_windows = rng.integers(0, CONFIG.vocab_size, (5, 12)).astype(np.int32)
    calib = calibration_stats(CONFIG, params, rng.integers(0, CONFIG.vocab_size, (4, 12)), hessians=True)
    return params, eval_windows, calib


SWEEP_LEVELS = {"magnitude": (0.5,), "wanda": (0.7,), "sparsegpt": (0.5,), "rotated_rtn": (3,)}
SWEEP_KINDS = ("q", "down")


def naive_outcome(params, windows, calib, c: Configuration, h_dense: np.ndarray, seed: int = 0):
    """Replace the site in the full params and run the whole model from the embedding."""
    w = params["blocks"][c.kind]["w"][c.layer]
    w_new = compress_matrix(c.method, w, c.level, calib.site(c.layer, c.kind), rotation_key(seed, c.layer, c.kind))
    blocks = {**params["blocks"], c.kind: {**params["blocks"][c.kind],
                                          "w": params["blocks"][c.kind]["w"].at[c.layer].set(w_new)}}
    changed = {**params, "blocks": blocks}
    ppl = perplexity(CONFIG, changed, windows, batch_size=len(windows)).perplexity
    h_last = np.asarray(forward(CONFIG, changed, jnp.asarray(windows), return_hidden=True)[1][-1], np.float64)
    return ppl, np.linalg.norm(h_last - h_dense, axis=-1), np.linalg.norm(h_dense, axis=-1)


@pytest.fixture(scope="module")
def naive_sweep(model):
    """The grid and, for every configuration, the naive outcome (computed once for both batch sizes)."""
    params, windows, calib = model
    grid = sweep_grid(CONFIG, SWEEP_LEVELS, kinds=SWEEP_KINDS)
    h_dense = np.asarray(forward(CONFIG, params, jnp.asarray(windows), return_hidden=True)[1][-1], np.float64)
    dense = perplexity(CONFIG, params, windows, batch_size=len(windows)).perplexity
    return grid, dense, [naive_outcome(params, windows, calib, c, h_dense) for c in grid]


@pytest.mark.parametrize("config_batch", [1, 3])
def test_sweep_matches_a_naive_full_forward_per_configuration(model, naive_sweep, tmp_path, config_batch):
    params, windows, calib = model
    grid, dense, outcomes = naive_sweep
    records, _ = run_sweep(CONFIG, params, windows, grid, tmp_path / "sweep.jsonl", calibration=calib,
                           window_batch=2, config_batch=config_batch)
    assert [(r["layer"], r["kind"], r["method"], r["level"]) for r in records] == [c.key for c in grid]
    for r, (ppl, err, ref) in zip(records, outcomes, strict=True):  # every record
        np.testing.assert_allclose(r["dense_ppl"], dense, rtol=1e-5)
        np.testing.assert_allclose(r["ppl"], ppl, rtol=1e-4)
        np.testing.assert_allclose(r["ppl_ratio"], ppl / dense, rtol=1e-4)
        np.testing.assert_allclose(r["drift"], np.linalg.norm(err) / np.linalg.norm(ref), rtol=1e-3, atol=1e-6)
        per_token = err / ref
        np.testing.assert_allclose(r["drift_token_median"], np.median(per_token[:, 1:]), rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(r["drift_token_mean"], per_token[:, 1:].mean(), rtol=1e-3, atol=1e-6)
        bos = np.linalg.norm(err[:, 0]) / np.linalg.norm(ref[:, 0])
        np.testing.assert_allclose(r["drift_bos"], bos, rtol=1e-3, atol=1e-6)
    assert len((tmp_path / "sweep.jsonl").read_text().splitlines()) == len(grid)


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import jax
    import numpy as np
    from rhojax.compress import calibration_stats
    from rhojax.models import ModelConfig, init_params
    from rhojax.sensitivity.grid import sweep_grid
    from rhojax.sensitivity.sweep import run_sweep

    path, kill_after = sys.argv[1], int(sys.argv[2])
    config = ModelConfig("llama", vocab_size=61, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                         head_dim=8, intermediate_size=48, norm_eps=1e-5)
    params = init_params(config, jax.random.PRNGKey(0), scale=0.25)
    rng = np.random.default_rng(0)
    windows = rng.integers(0, config.vocab_size, (4, 10)).astype(np.int32)
    calib = calibration_stats(config, params, rng.integers(0, config.vocab_size, (2, 10)))
    grid = sweep_grid(config, {"magnitude": (0.5,), "wanda": (0.5,), "rotated_rtn": (3,)}, kinds=("q", "up"))

    def on_record(done):
        if done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    run_sweep(config, params, windows, grid, path, calibration=calib, window_batch=3, config_batch=4,
              on_record=on_record)
    """
)


def test_a_killed_and_resumed_sweep_writes_the_same_file(tmp_path, monkeypatch):
    script = tmp_path / "sweep_script.py"
    script.write_text(SCRIPT)
    whole = tmp_path / "whole" / "sweep.jsonl"
    resumed = tmp_path / "resumed" / "sweep.jsonl"
    killed = subprocess.run([sys.executable, str(script), str(resumed), "6"], timeout=300)
    assert killed.returncode == -9  # SIGKILL after 6 records: mid-batch (batches of 4)
    assert len(resumed.read_text().splitlines()) == 6
    with open(resumed, "a") as f:  # and a torn line, as if killed while writing
        f.write('{"layer": 2, "kind": "q"')
    for path in (resumed, whole):  # resume, and an uninterrupted run, here in-process
        monkeypatch.setattr(sys, "argv", [str(script), str(path), "0"])
        runpy.run_path(str(script), run_name="__main__")
    assert resumed.read_bytes() == whole.read_bytes()
    assert len(whole.read_text().splitlines()) == 3 * 2 * 3


def test_a_run_folder_refuses_other_settings_and_names_them(tmp_path):
    from rhojax.runs import RunFolder, RunFolderError
    from rhojax.sensitivity.study import SweepSettings

    RunFolder.open(tmp_path, {"model": "m", "settings": SweepSettings(tokens=1)})
    RunFolder.open(tmp_path, {"model": "m", "settings": SweepSettings(tokens=1)})  # same settings: resumes
    with pytest.raises(RunFolderError, match=r"settings.tokens: 1 -> 2; settings.yardstick: True -> False"):
        RunFolder.open(tmp_path, {"model": "m", "settings": SweepSettings(tokens=2, yardstick=False)})


def test_levels_and_grid():
    assert parse_levels(["magnitude", "rtn"], ["0.3,0.6", "rtn=4"]) == {"magnitude": (0.3, 0.6), "rtn": (4.0,)}
    with pytest.raises(RhojaxError):
        parse_levels(["magnitude"], ["rtn=4"])
    with pytest.raises(RhojaxError):
        parse_levels(["nonsense"], [])
    from rhojax.compress import METHODS

    assert set(parse_levels(METHODS, [])) == set(METHODS)  # every method has a default level
    grid = sweep_grid(CONFIG, {"magnitude": (0.5,), "wanda": (0.5, 0.7)})
    assert len(grid) == CONFIG.num_layers * 7 * 3
    assert [c.layer for c in grid] == sorted(c.layer for c in grid)
    with pytest.raises(RhojaxError):
        sweep_grid(CONFIG, {"magnitude": (0.5,)}, layers=[3])


# ----------------------------------------------------------------------------- summaries


def fake_records(ratios: dict[tuple[int, str], float]) -> list[dict]:
    return [{"layer": t, "kind": k, "method": "magnitude", "level": 0.5, "ppl_ratio": r}
            for (t, k), r in ratios.items()]


def test_hierarchy_spread_map_and_cfi_on_known_ratios():
    ratios = {(0, "q"): 2.0, (1, "q"): 4.0, (2, "q"): 8.0, (0, "v"): 1.0, (1, "v"): 1.5, (2, "v"): 1.25}
    records = fake_records(ratios)
    assert hierarchy(records) == [("q", 4.0), ("v", 1.25)]
    s = spread(records)
    assert (s.spread, s.max_site, s.min_site) == (8.0, (2, "q"), (0, "v"))
    grid = ratio_map(records, 3, ["q", "k", "v"])
    assert grid[2, 0] == 8.0 and np.isnan(grid[0, 1]) and grid[1, 2] == 1.5
    expected = sum(math.log10(r) for r in ratios.values()) / len(ratios)
    assert compression_fragility_index(records) == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=2, max_size=12, unique_by=(
    lambda p: p[0], lambda p: p[1])))
def test_kendall_tau_counts_concordant_pairs(pairs):
    a, b = zip(*pairs, strict=True)
    signs = [np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in itertools.combinations(range(len(a)), 2)]
    assert kendall_tau(a, b) == pytest.approx(sum(signs) / len(signs), abs=1e-9)


@pytest.mark.slow
def test_sweep_on_smollm2_matches_a_full_forward(smollm2, smollm2_windows, tmp_path):
    config, params = smollm2.config, smollm2.params
    windows = smollm2_windows("evaluation", 1, 64)
    grid = [Configuration(0, "up", "magnitude", 0.5), Configuration(29, "v", "magnitude", 0.5)]
    records, _ = run_sweep(config, params, windows, grid, tmp_path / "sweep.jsonl")
    dense = perplexity(config, params, windows, batch_size=1).perplexity
    for c, r in zip(grid, records, strict=True):
        w = params["blocks"][c.kind]["w"]
        changed = {**params, "blocks": {**params["blocks"], c.kind: {
            **params["blocks"][c.kind], "w": w.at[c.layer].set(compress_matrix(c.method, w[c.layer], c.level))}}}
        ppl = perplexity(config, changed, windows, batch_size=1).perplexity
        np.testing.assert_allclose(r["ppl_ratio"], ppl / dense, rtol=2e-4)


def test_compress_all_compresses_every_site_and_nothing_else(model):
    params, _, calib = model
    out = compress_all(CONFIG, params, "wanda", 0.5, calibration=calib)
    for t, kind in CONFIG.sites:
        expected = compress_matrix("wanda", params["blocks"][kind]["w"][t], 0.5, calib.site(t, kind))
        np.testing.assert_array_equal(out["blocks"][kind]["w"][t], expected)
    np.testing.assert_array_equal(out["embed"], params["embed"])
    np.testing.assert_array_equal(out["blocks"]["mlp_norm"]["scale"], params["blocks"]["mlp_norm"]["scale"])


def test_cli_rejects_an_unknown_method_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from rhojax.cli import app

    result = CliRunner().invoke(app, ["sweep", "smollm2-135m", "--out", str(tmp_path), "--methods", "magic"])
    assert result.exit_code == 2
    assert "method 'magic' is unknown" in result.output


@pytest.mark.slow
def test_sweep_command_writes_summary_and_figures(tmp_path):
    from typer.testing import CliRunner

    from rhojax.cli import app

    args = ["sweep", "smollm2-135m", "--out", str(tmp_path), "--layers", "29", "--kinds", "v,up", "--tokens", "128",
            "--seq-len", "64", "--calib-tokens", "128"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["maps"]) == {"magnitude@0.5", "wanda@0.5"}
    records = [json.loads(line) for line in (tmp_path / "sweep.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for label, m in summary["maps"].items():
        assert m["cfi"] is None and m["uniform_ratio"] is None  # incomplete map: no CFI, no yardstick
        ratios = [r["ppl_ratio"] for r in records if f"{r['method']}@{r['level']:g}" == label]
        assert m["spread"] == pytest.approx(max(ratios) / min(ratios))
        # one layer, so each kind's median is its only ratio; the extremes are the two sites themselves
        sites = {(r["layer"], r["kind"]): r["ppl_ratio"] for r in records if f"{r['method']}@{r['level']:g}" == label}
        by_ratio = sorted(sites, key=sites.get, reverse=True)
        assert [(h["kind"], h["median_ratio"]) for h in m["hierarchy"]] == [(k, sites[(t, k)]) for t, k in by_ratio]
        assert (tuple(m["max_site"]), tuple(m["min_site"])) == (by_ratio[0], by_ratio[-1])
        v = m["kinds"].index("v")
        assert m["ratio_ci_low"][29][v] <= m["ratio"][29][v] <= m["ratio_ci_high"][29][v]
    for name in ("heatmap_magnitude_0.5.png", "heatmap_wanda_0.5.png", "hierarchy.png"):
        assert (tmp_path / name).stat().st_size > 0
    rerun = CliRunner().invoke(app, args[:-2] + ["--calib-tokens", "256"])
    assert rerun.exit_code == 2 and "settings.calib_tokens: 128 -> 256" in rerun.output


def test_uniform_ratio_is_the_all_sites_perplexity_ratio(model):
    from rhojax.sensitivity.uniform import uniform_ratio

    params, windows, calib = model

    def nll(p):  # plain log-softmax over a full forward, no rhojax perplexity code
        logits = np.asarray(forward(CONFIG, p, jnp.asarray(windows)), np.float64)
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        return -np.take_along_axis(logp[:, :-1], windows[:, 1:, None], axis=-1).mean()

    compressed = compress_all(CONFIG, params, "wanda", 0.6, calibration=calib)
    got = uniform_ratio(CONFIG, params, windows, "wanda", 0.6, calibration=calib, batch_size=2)
    np.testing.assert_allclose(got, math.exp(nll(compressed) - nll(params)), rtol=1e-4)
    dense = perplexity(CONFIG, params, windows, batch_size=2).perplexity  # as a sweep's dense reference gives it
    given_dense = uniform_ratio(CONFIG, params, windows, "wanda", 0.6, calibration=calib, batch_size=2, dense_ppl=dense)
    np.testing.assert_allclose(given_dense, got, rtol=1e-12)


def test_summary_measures_the_yardstick_only_for_complete_maps():
    from rhojax.sensitivity.study import SweepSettings, summarize

    rng = np.random.default_rng(1)
    dense_nll = rng.normal(30.0, 3.0, size=4)
    records = [{"layer": t, "kind": k, "method": m, "level": 0.5, "ppl_ratio": 1 + rng.random(),
                "window_nll": dense_nll + rng.random(4)}
               for t, k in CONFIG.sites for m in ("magnitude", "wanda")
               if m == "magnitude" or t == 0]  # wanda covers layer 0 only
    calls = []
    summary = summarize(records, dense_nll, 9, CONFIG.num_layers, CONFIG.site_kinds, SweepSettings(boots=50),
                        uniform=lambda method, level: calls.append((method, level)) or 7.0)
    assert calls == [("magnitude", 0.5)]
    assert summary["magnitude@0.5"]["uniform_ratio"] == 7.0 and summary["magnitude@0.5"]["cfi"] is not None
    assert summary["wanda@0.5"]["uniform_ratio"] is None and summary["wanda@0.5"]["cfi"] is None


def test_fragility_command_reports_kendall_tau_over_maps(tmp_path):
    from typer.testing import CliRunner

    from rhojax.cli import app

    maps = {"a": {"magnitude@0.5": (0.10, 30.0), "wanda@0.5": (0.01, 2.0)},
            "b": {"magnitude@0.5": (0.05, 40.0), "wanda@0.5": (0.02, 1.5), "wanda@0.7": (0.3, None)}}
    for name, entries in maps.items():
        (tmp_path / name).mkdir()
        summary = {"model": name, "maps": {label: {"cfi": c, "uniform_ratio": u} for label, (c, u) in entries.items()}}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(app, ["fragility", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "fragility.json").read_text())
    assert written["maps"] == 4  # the map without a yardstick is left out
    cfi, ratio = [0.10, 0.01, 0.05, 0.02], [30.0, 2.0, 40.0, 1.5]
    # 6 pairs; discordant: (a/magnitude, b/magnitude) and (a/wanda, b/wanda) -> tau = (4 - 2) / 6
    assert written["kendall_tau"] == pytest.approx(2 / 6)
    assert kendall_tau(cfi, ratio) == pytest.approx(2 / 6)
    assert (tmp_path / "out" / "fragility.png").stat().st_size > 0
    missing = CliRunner().invoke(app, ["fragility", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "summary.json does not exist" in missing.output
