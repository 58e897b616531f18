"""Choosing a plan from a table of effective drifts, and rescaling it by uniform anchors (pure: no model is run)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rhojax.models import ModelConfig
from rhojax.plan.actions import ActionGrid, dense_model_cost, prune
from rhojax.plan.choose import anchor_plan, anchored_table, choose_plan, drift_table, lightest_fraction, plan_drifts
from rhojax.plan.cost_model import LossCurve, predict

CONFIG = ModelConfig("llama", vocab_size=61, hidden_size=16, num_layers=3, num_heads=2, num_kv_heads=1,
                     head_dim=8, intermediate_size=32, norm_eps=1e-5)
#: Predicted loss = drift^2: the plan then minimises sum delta^2.
SQUARE = LossCurve(1.0, 2.0)
GRID = ActionGrid(methods=("wanda",), sparsities=(0.3, 0.5, 0.7), nm_patterns=(), rank_fractions=(), bits=(4,),
                  group_size=16, removal=True)


def table(seed, removal_drift):
    rng = np.random.default_rng(seed)
    out = {}
    for layer, kind in CONFIG.sites:
        for a in GRID.site_actions(CONFIG.site_shape(kind)):
            if a.op != "dense":
                out[(layer, kind, a.name)] = float(rng.random() * a.level if a.op == "prune" else rng.random())
    for layer in range(CONFIG.num_layers):
        out[(layer, "block", "remove")] = removal_drift
    return out


def test_one_block_always_stays_even_when_removal_looks_free():
    plan = choose_plan(CONFIG, GRID, table(0, removal_drift=0.0), SQUARE, "params",
                       0.12 * dense_model_cost(CONFIG).params, bins=500)
    assert len(plan.removed) == CONFIG.num_layers - 1
    assert plan.cost(CONFIG).params <= 0.12 * dense_model_cost(CONFIG).params  # the kept block at 70%


def test_plan_is_the_brute_force_optimum_on_one_layer():
    """One block, removal forbidden by its cost: the plan minimises sum delta^2 over all 5^7 action choices."""
    config = CONFIG.replace(num_layers=1)
    grid = ActionGrid(methods=("wanda",), sparsities=(0.5, 0.7), nm_patterns=(), rank_fractions=(), bits=(4,),
                      group_size=16, removal=False)
    rng = np.random.default_rng(3)
    drifts = {(0, k, a.name): float(rng.random()) for k in config.site_kinds
              for a in grid.site_actions(config.site_shape(k)) if a.op != "dense"}
    budget = 0.55 * dense_model_cost(config).params
    plan = choose_plan(config, grid, drifts, SQUARE, "params", budget, bins=20000)
    options = [grid.site_actions(config.site_shape(k)) for k in config.site_kinds]
    best = np.inf
    for combo in itertools.product(*options):
        cost = sum(a.cost(config.site_shape(k)).params for k, a in zip(config.site_kinds, combo, strict=True))
        if cost <= budget:
            best = min(best, sum(0.0 if a.op == "dense" else drifts[(0, k, a.name)] ** 2
                                 for k, a in zip(config.site_kinds, combo, strict=True)))
    achieved = sum(drifts[(0, k, a.name)] ** 2 for (_, k), a in plan.actions.items() if a.op != "dense")
    assert plan.cost(config).params <= budget
    assert achieved == pytest.approx(best, rel=1e-12)  # the discretisation (20,000 bins) costs nothing here


def test_unmeasured_sparsities_are_interpolated_in_level():
    grid = ActionGrid(methods=("wanda",), sparsities=(0.3, 0.5, 0.7), nm_patterns=(), rank_fractions=(), bits=(),
                      removal=False)
    records = [{"layer": layer, "kind": kind, "action": f"wanda@{s:g}", "local_error": 0.0, "delta_loss": dl}
               for layer, kind in CONFIG.sites for s, dl in ((0.3, 0.01), (0.7, 0.09))]
    curve = LossCurve(1.0, 2.0)
    drifts = drift_table(CONFIG, grid, records, curve, np.ones(CONFIG.num_layers), (0.3, 0.7))
    assert drifts[(1, "up", "wanda@0.3")] == pytest.approx(0.1) and drifts[(1, "up", "wanda@0.7")] == pytest.approx(0.3)
    assert drifts[(1, "up", "wanda@0.5")] == pytest.approx(0.2)  # halfway between the measured drifts


def test_lightest_fraction_in_closed_form():
    grid = ActionGrid(methods=("wanda",), sparsities=(0.5,), nm_patterns=(), rank_fractions=(), bits=(), removal=False)
    assert lightest_fraction(CONFIG, grid, "flops") == 1.0
    assert lightest_fraction(CONFIG, grid, "params") == pytest.approx(0.5)
    with_removal = ActionGrid(methods=("wanda",), sparsities=(0.5,), nm_patterns=(), rank_fractions=(), bits=())
    assert lightest_fraction(CONFIG, with_removal, "params") == pytest.approx(0.5 / CONFIG.num_layers)


def test_uniform_rtn_baseline_falls_back_to_channel_scales_like_the_grid():
    """SmolLM2's width 576 is no multiple of 128: the baseline still runs, at the most bits that fit."""
    from rhojax.plan.actions import rtn, uniform_plan
    from rhojax.plan.baselines import baseline_plan

    config = CONFIG.replace(hidden_size=576, num_heads=9, num_kv_heads=3, head_dim=64, intermediate_size=1536)
    plan = baseline_plan("uniform_rtn", config, "bytes", 0.15, None, "depth")
    assert plan.action(0, "q").name == "rtn@2b/grow" and plan.action(0, "down").name == "rtn@2b/g128"
    dense = dense_model_cost(config).bytes
    assert plan.cost(config).bytes <= 0.15 * dense
    three = uniform_plan(config, lambda shape: rtn(3, 128 if shape[0] % 128 == 0 else None))
    assert three.cost(config).bytes > 0.15 * dense  # 3 bits would not fit
    assert isinstance(baseline_plan("uniform_rtn", config, "bytes", 0.01, None, "depth"), str)


def test_anchors_reprice_their_family_so_the_uniform_plans_are_predicted_at_their_measured_loss():
    """Planted: every single site of SparseGPT (per channel) looks 4x dearer than the same site under Wanda, but the
    uniform SparseGPT model measures half of Wanda's loss (its updates absorb upstream error). Without anchors
    the planner prunes with Wanda; with them, with SparseGPT, and both anchor plans are predicted at their
    measured loss."""
    grid = ActionGrid(methods=("wanda", "sparsegpt_row"), sparsities=(0.3, 0.5, 0.7), nm_patterns=((2, 4),),
                      rank_fractions=(), bits=(), group_size=16, removal=False)
    drifts = {}
    for layer, kind in CONFIG.sites:
        for a in grid.site_actions(CONFIG.site_shape(kind)):
            if a.op != "dense":
                drifts[(layer, kind, a.name)] = a.level * (2.0 if a.method == "sparsegpt_row" else 1.0)
    wanda, sgpt = prune("wanda", 0.5), prune("sparsegpt_row", 0.5)
    additive = {a: predict(SQUARE, plan_drifts(CONFIG, anchor_plan(CONFIG, grid, a), drifts)) for a in (wanda, sgpt)}
    assert additive[sgpt] == pytest.approx(4 * additive[wanda])
    measured = {wanda: additive[wanda], sgpt: additive[wanda] / 2}
    budget = 0.5 * dense_model_cost(CONFIG).params
    before = choose_plan(CONFIG, grid, drifts, SQUARE, "params", budget, bins=2000)
    assert {a.method for a in before.actions.values() if a.op == "prune"} == {"wanda"}
    table, rows = anchored_table(CONFIG, grid, drifts, SQUARE, measured)
    assert [r["factor"] for r in rows] == pytest.approx([1.0, 1 / 8])
    for a in (wanda, sgpt):
        assert predict(SQUARE, plan_drifts(CONFIG, anchor_plan(CONFIG, grid, a), table)) == pytest.approx(measured[a])
    assert table[(1, "up", "sparsegpt_row@0.7")] == pytest.approx(drifts[(1, "up", "sparsegpt_row@0.7")] / 8**0.5)
    assert table[(1, "up", "sparsegpt@2:4")] == drifts[(1, "up", "sparsegpt@2:4")]  # N:M: another family
    after = choose_plan(CONFIG, grid, table, SQUARE, "params", budget, bins=2000)
    assert {a.method for a in after.actions.values() if a.op == "prune"} == {"sparsegpt_row"}


def test_two_anchors_of_a_family_interpolate_its_levels_between_them():
    grid = ActionGrid(methods=("wanda",), sparsities=(0.3, 0.5, 0.7), nm_patterns=(), rank_fractions=(), bits=(),
                      group_size=16, removal=True)
    drifts = {key: 1.0 for key in table(1, removal_drift=1.0)}
    n = len(CONFIG.sites)  # each anchor plan: n sites of predicted loss 1 (curve: drift^2)
    low, high = prune("wanda", 0.3), prune("wanda", 0.7)
    scaled, rows = anchored_table(CONFIG, grid, drifts, SQUARE, {low: 0.5 * n, high: 3.0 * n})
    assert [r["predicted_delta_loss"] for r in rows] == pytest.approx([n, n])
    assert SQUARE.loss(scaled[(0, "q", "wanda@0.5")]) == pytest.approx(1.75)  # halfway between 0.5 and 3
    assert scaled[(2, "block", "remove")] == 1.0  # removals keep their measured cost
