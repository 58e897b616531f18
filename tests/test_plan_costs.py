"""Plan costs in closed form, actions (names, candidates, application) and the baselines' budgets."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rhojax.compress import calibration_stats, compress_matrix
from rhojax.errors import RhojaxError
from rhojax.models import ModelConfig, init_params
from rhojax.plan import baselines
from rhojax.plan.actions import (
    DENSE,
    REMOVE,
    ActionGrid,
    Plan,
    apply_plan,
    dense_model_cost,
    lowrank,
    nm,
    parse_action,
    prune,
    rtn,
    uniform_plan,
)
from rhojax.plan.costs import Cost

CONFIG = ModelConfig("llama", vocab_size=61, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=48, norm_eps=1e-5)


def test_costs_in_closed_form():
    shape = (8, 4)  # n = 32
    assert DENSE.cost(shape) == Cost(32, 64, 64)
    assert prune("wanda", 0.5).cost(shape) == Cost(16, 64, 2 * 16 + 32 / 8)  # no FLOPs saved, 1-bit mask
    assert prune("wanda", 0.3).cost(shape).params == 32 - 10  # round(0.3 * 32) = 10 dropped
    assert nm("sparsegpt", (2, 4)).cost(shape) == Cost(16, 32, 2 * 16 + 16 * 2 / 8)  # 2-bit index per kept value
    assert nm("sparsegpt", (1, 8)).cost(shape) == Cost(4, 8, 2 * 4 + 4 * 3 / 8)
    assert lowrank(2).cost(shape) == Cost(24, 48, 48)  # 2 * (8 + 4) params in two bf16 factors
    assert rtn(3, 4).cost(shape) == Cost(32, 64, 32 * 3 / 8 + 2 * 32 / 4)  # 8 bf16 scales
    assert rtn(3, None).cost(shape) == Cost(32, 64, 12 + 2 * 4)  # one scale per output channel
    assert REMOVE.cost(shape) == Cost(0, 0, 0)
    # bytes=0.15 of bfloat16 is 2.4 bits per weight: 2-bit RTN with groups of 128 fits, 3-bit does not
    big = (1024, 1024)
    assert rtn(2, 128).cost(big).bytes / DENSE.cost(big).bytes == pytest.approx((2 + 16 / 128) / 16)
    assert rtn(3, 128).cost(big).bytes / DENSE.cost(big).bytes > 0.15


def test_action_names_round_trip_and_plan_cost():
    for a in (DENSE, REMOVE, prune("wanda", 0.35), prune("sparsegpt", 0.7), nm("sparsegpt", (2, 4)), lowrank(12),
              rtn(3, 128), rtn(4, None)):
        assert parse_action(a.name) == a
    with pytest.raises(RhojaxError, match="action 'bogus'"):
        parse_action("bogus")
    plan = Plan((1,), {(0, "q"): prune("wanda", 0.5), (2, "down"): lowrank(4)})
    assert Plan.from_dict(plan.to_dict(CONFIG)) == Plan((1,), {**{s: DENSE for s in CONFIG.sites if s[0] != 1},
                                                             (0, "q"): prune("wanda", 0.5), (2, "down"): lowrank(4)})
    dense = dense_model_cost(CONFIG)
    total = sum(CONFIG.site_shape(k)[0] * CONFIG.site_shape(k)[1] for k in CONFIG.site_kinds)
    assert dense.params == 3 * total
    q, down = CONFIG.site_shape("q"), CONFIG.site_shape("down")
    expected = 2 * total - q[0] * q[1] + (q[0] * q[1] - round(0.5 * q[0] * q[1])) - down[0] * down[1] \
        + 4 * (down[0] + down[1])
    assert plan.cost(CONFIG).params == expected


def test_site_actions_skip_what_saves_nothing():
    grid = ActionGrid(methods=("wanda",), sparsities=(0.5,), nm_patterns=((2, 4), (2, 3)), rank_fractions=(0.25, 0.9),
                      bits=(3,), group_size=16)
    names = [a.name for a in grid.site_actions((32, 48))]
    assert names == ["dense", "wanda@0.5", "wanda@2:4", "lowrank_aware@r8", "rtn@3b/g16"]  # 2:3 and rank 29 skipped
    assert [a.name for a in grid.site_actions((48, 32))][-1] == "rtn@3b/g16"
    assert ActionGrid(group_size=128).site_actions((48, 32))[-1].name == "rtn@4b/grow"
    both = ActionGrid(methods=("sparsegpt", "sparsegpt_row"), sparsities=(0.5,), rank_fractions=(), bits=())
    assert [a.name for a in both.site_actions((32, 48))] == [  # one 2:4 action: its mask is per channel anyway
        "dense", "sparsegpt@0.5", "sparsegpt@2:4", "sparsegpt_row@0.5"]


@pytest.fixture(scope="module")
def tiny():
    params = init_params(CONFIG, jax.random.PRNGKey(0), scale=0.25)
    windows = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (4, 12)).astype(np.int32)
    return params, windows


def test_apply_plan_compresses_like_the_operators_and_removes_blocks(tiny):
    params, windows = tiny
    plan = Plan((1,), {(0, "q"): prune("sparsegpt", 0.5), (0, "v"): rtn(2, 16), (2, "up"): lowrank(3),
                       (2, "down"): nm("wanda", (2, 4))})
    config, out = apply_plan(CONFIG, params, plan, windows, batch_size=2)
    assert config.num_layers == 2
    # layer 0 sees the dense inputs: its matrices equal the operators applied with dense statistics
    stats = calibration_stats(CONFIG, params, windows, hessians=True)
    for kind, method, level, extra in (("q", "sparsegpt", 0.5, {}), ("v", "rtn", 2, {"group_size": 16})):
        expected = compress_matrix(method, params["blocks"][kind]["w"][0], level, stats.site(0, kind), **extra)
        np.testing.assert_allclose(out["blocks"][kind]["w"][0], expected, atol=2e-5)  # Hessian summation order
        np.testing.assert_array_equal(out["blocks"][kind]["w"][0] == 0, expected == 0)
    np.testing.assert_array_equal(out["blocks"]["k"]["w"][0], params["blocks"]["k"]["w"][0])  # dense kept
    # old layer 2 is new layer 1: rank 3 and exactly 2 of every 4 inputs kept per output
    assert np.linalg.matrix_rank(np.asarray(out["blocks"]["up"]["w"][1]), tol=1e-4) == 3
    kept = np.asarray(out["blocks"]["down"]["w"][1] != 0).reshape(-1, 4, CONFIG.hidden_size).sum(axis=1)
    assert np.all(kept == 2)
    np.testing.assert_array_equal(out["blocks"]["o"]["w"][1], params["blocks"]["o"]["w"][2])


def test_baselines_meet_their_budget():
    L = CONFIG.num_layers

    def signal(name):
        return {"bi": np.array([0.3, 0.1, 0.2]), "outlier_ratio": np.array([0.01, 0.02, 0.03]),
                "alpha": np.array([3.0, 4.0, 5.0]), "rho": np.array([1.0, 0.9, 1.1])}[name]

    dense = dense_model_cost(CONFIG)
    for unit, fraction in (("params", 0.5), ("bytes", 0.3), ("flops", 0.6), ("bytes", 0.15)):
        for name in baselines.BASELINES:
            plan = baselines.baseline_plan(name, CONFIG, unit, fraction, signal)
            if isinstance(plan, str):
                continue
            used = plan.cost(CONFIG).get(unit) / dense.get(unit)
            assert used <= fraction + 1e-3, (unit, name, used)
    assert isinstance(baselines.baseline_plan("uniform_wanda", CONFIG, "flops", 0.6, signal), str)
    row = baselines.baseline_plan("uniform_sparsegpt_row", CONFIG, "params", 0.5, signal)
    assert {a.name for a in row.actions.values()} == {"sparsegpt_row@0.5"} and len(row.actions) == len(CONFIG.sites)
    removal = baselines.baseline_plan("bi_removal", CONFIG, "params", 0.6, signal)
    assert removal.removed == (1, 2)  # least influential first; (L - 1) / L = 0.67 would exceed 0.6
    assert baselines.removal_count(L, 0.6) == 2 and baselines.removal_count(L, 0.7) == 1
    assert baselines.sparsity_for("bytes", 0.3) == pytest.approx(17 / 16 - 0.3)
    assert uniform_plan(CONFIG, DENSE).cost(CONFIG) == dense
