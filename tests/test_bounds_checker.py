"""The bound checker on a small random llama: no violations, an independent per-layer recomputation,
and a deliberately wrong bound that it must report."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from rhojax.bounds import twins
from rhojax.bounds.checker import DEFAULT_TWINS, check_bounds, site_inputs
from rhojax.bounds.levels import Level, default_levels, full_levels
from rhojax.bounds.summary import level_record, summarize
from rhojax.compress import calibration_stats, compress_matrix
from rhojax.models.config import ModelConfig
from rhojax.models.params import init_params

CONFIG = ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=64, norm_eps=1e-5)
LEVELS = (Level("magnitude", 0.5), Level("wanda", 0.3), Level("sparsegpt", 0.5), Level("lowrank", 0.25),
          Level("rtn", 3, group_size=16), Level("rotated_rtn", 4))


@functools.cache
def _setup():
    params = init_params(CONFIG, jax.random.PRNGKey(0))
    windows = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, 16)).astype(np.int32)
    stats = calibration_stats(CONFIG, params, windows, hessians=True)
    return params, site_inputs(CONFIG, params, windows, 24), stats


def _run(levels, fns=DEFAULT_TWINS):
    params, inputs, stats = _setup()
    return list(check_bounds(CONFIG, params, inputs, stats, levels, key=jax.random.PRNGKey(1), fns=fns))


@functools.cache
def _default_results():
    return _run(LEVELS)


def test_every_site_and_level_is_checked_without_violations():
    results = _default_results()
    summary = summarize(level_record(r) for r in results)
    assert summary["configurations"] == len(LEVELS) * len(CONFIG.sites)
    assert summary["violations"] == 0, summary["violating_rows"]
    expected = {"weight_perturbation", "relative_weight_perturbation", "weight_input_error", "additive_composition",
                "two_matrix_chain", "lipschitz_activation_chain", "residual_block", "product_propagation",
                "magnitude_pruning_frobenius", "rtn_rounding_bound", "rtn_frobenius_bound"}
    assert set(summary["theorems"]) == expected
    for entry in summary["theorems"].values():
        assert entry["tightness"]["min"] >= 1 - 1e-9


def test_matches_a_plain_per_layer_recomputation():
    """The vmapped float64 evaluation equals a per-layer numpy loop over the same compressed matrices."""
    params, inputs, stats = _setup()
    level = Level("wanda", 0.3)
    (result,) = [r for r in _default_results() if r.level == level]
    evaluation = next(e for e in result.evaluations if e.theorem == "weight_perturbation" and e.kind == "up")
    for layer in range(CONFIG.num_layers):
        w = np.asarray(params["blocks"]["up"]["w"][layer], np.float64)
        w2 = np.asarray(compress_matrix("wanda", params["blocks"]["up"]["w"][layer], 0.3, stats.site(layer, "up")),
                        np.float64)
        x = inputs["mlp_in"][layer].astype(np.float64)
        assert evaluation.actual[layer] == pytest.approx(np.linalg.norm(x @ w2 - x @ w), rel=1e-10)
        assert evaluation.bound[layer] == pytest.approx(np.linalg.norm(w2 - w) * np.linalg.norm(x), rel=1e-10)


def _divided_by_ten(twin):
    def wrong(*args, **kwargs):
        check = twin(*args, **kwargs)
        return twins.BoundCheck(check.bound / 10, check.actual, check.scale)

    return wrong


def test_a_bound_divided_by_ten_is_reported_as_violated():
    wrong = ("weight_perturbation", "rtn_frobenius_bound")
    fns = {**DEFAULT_TWINS, **{name: _divided_by_ten(DEFAULT_TWINS[name]) for name in wrong}}
    summary = summarize(level_record(r) for r in _run((Level("rtn", 3, group_size=16),), fns))
    for name in wrong:
        assert summary["theorems"][name]["violations"] > 0
    assert {r["theorem"] for r in summary["violating_rows"]} == set(wrong)


def test_default_plan_reaches_the_paper_count_on_smollm2_shapes():
    """80 levels x 210 SmolLM2 sites = 16,800 >= 14,040, every level fitting every SmolLM2 matrix."""
    shapes = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)]
    sites = 30 * sum(level.applies_to(s) for level in default_levels() for s in shapes)
    assert sites == 16_800 >= 14_040
    assert len({level.label for level in full_levels()}) == len(full_levels())
