"""The plan package used as a researcher would: ``import rhojax`` and ``rhojax.plan`` only.

A plan is chosen from a drift table, built on a tiny random model, and the built model is counted
independently (NumPy non-zeros, number of blocks) against what the plan's cost accounting says it spends.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rhojax

CONFIG = rhojax.ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4,
                            num_kv_heads=2, head_dim=8, intermediate_size=48, norm_eps=1e-5)
PARAMS = rhojax.init_params(CONFIG, jax.random.key(0), scale=0.1)
WINDOWS = np.asarray(jax.random.randint(jax.random.key(1), (4, 16), 0, CONFIG.vocab_size))


def test_the_plan_package_is_public():
    plan = rhojax.plan
    assert "plan" in dir(rhojax) and set(plan.__all__) <= set(dir(plan))
    assert plan.parse_target("bytes=0.15") == ("bytes", 0.15)
    with pytest.raises(rhojax.RhojaxError, match="target 'watts=0.5'"):
        plan.parse_target("watts=0.5")


def test_a_chosen_plan_built_spends_what_its_cost_says():
    plan = rhojax.plan
    grid = plan.ActionGrid(methods=("wanda",), sparsities=(0.5,), nm_patterns=(), rank_fractions=(), bits=(),
                           removal=True)
    # Every matrix costs 1 to prune to 50%, except in layer 2 (100 each); removing a block costs 20, except
    # block 0 (1, cheaper than pruning its seven matrices).
    table = {(layer, kind, "wanda@0.5"): 100.0 if layer == 2 else 1.0 for layer, kind in CONFIG.sites}
    table |= {(layer, "block", "remove"): 1.0 if layer == 0 else 20.0 for layer in range(CONFIG.num_layers)}
    dense = plan.dense_model_cost(CONFIG)
    # params budget 0.5 of 4 blocks: remove block 0 (0.25 saved, cost 1) and halve blocks 1 and 3 (0.125 each,
    # cost 7 each) is the only plan below 20 (the slack is less than halving the smallest matrix saves, and more
    # than the rounding of 4,000 budget bins)
    chosen = plan.choose_plan(CONFIG, grid, table, plan.LossCurve(kappa=1.0, p=1.0), "params",
                              0.505 * dense.params, bins=4000)
    assert chosen.removed == (0,)
    pruned_layers = sorted({layer for (layer, _), a in chosen.actions.items() if a.op == "prune"})
    assert pruned_layers == [1, 3]
    assert chosen.cost(CONFIG).fraction(dense)["params"] == pytest.approx(0.5)
    assert plan.Plan.from_dict(chosen.to_dict(CONFIG)) == chosen

    config, params = plan.apply_plan(CONFIG, PARAMS, chosen, WINDOWS)
    assert config.num_layers == 3  # block 0 deleted; blocks 1, 2, 3 are now 0, 1, 2
    nonzero = sum(int(np.count_nonzero(np.asarray(rhojax.get_site((config, params), site)))) for site in config.sites)
    assert nonzero == chosen.cost(CONFIG).params
    halved = [np.count_nonzero(np.asarray(rhojax.get_site((config, params), (new, kind)))) /
              np.prod(config.site_shape(kind)) for new in (0, 2) for kind in config.site_kinds]
    assert halved == [0.5] * len(halved)
