"""Outlier ratios and sequential allocation pruning against plain re-implementations."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rhojax.allocation import layer_alphas, outlier_ratios
from rhojax.allocation.apply import layer_sparsity, prune_with_allocation
from rhojax.allocation.metrics import hill_alpha
from rhojax.compress import calibration_stats, sparsegpt_prune, wanda_prune
from rhojax.compress.calibration import INPUT_OF
from rhojax.models import ModelConfig, init_params

CONFIG = ModelConfig(
    family="llama", vocab_size=64, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=8,
    intermediate_size=48, norm_eps=1e-5, rope_theta=1e4,
)


@pytest.fixture(scope="module")
def params():
    return init_params(CONFIG, jax.random.PRNGKey(0), scale=0.2)


@pytest.fixture(scope="module")
def windows():
    return np.asarray(jax.random.randint(jax.random.PRNGKey(5), (3, 16), 0, CONFIG.vocab_size), np.int32)


def test_outlier_ratios_match_a_per_layer_loop(params, windows):
    stats = calibration_stats(CONFIG, params, windows)
    got = outlier_ratios(CONFIG, params, stats, m=3.0)
    for layer in range(CONFIG.num_layers):
        scores = np.concatenate([
            (np.abs(np.asarray(params["blocks"][k]["w"][layer], np.float64))
             * np.sqrt(stats.sq_norms[INPUT_OF[k]][layer])[:, None]).ravel()
            for k in CONFIG.site_kinds
        ])
        assert got[layer] == pytest.approx(np.mean(scores > 3.0 * scores.mean()), abs=1e-6)
    assert np.all(got > 0)


def test_layer_alphas_average_the_matrices(params):
    mean, per_kind = layer_alphas(CONFIG, params)
    w = np.asarray(params["blocks"]["down"]["w"][1], np.float64)
    assert per_kind["down"][1] == pytest.approx(hill_alpha(np.linalg.eigvalsh(w.T @ w)), rel=1e-3)
    np.testing.assert_allclose(mean, np.mean([per_kind[k] for k in CONFIG.site_kinds], axis=0))


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_sequential_pruning_matches_calibration_on_the_pruned_prefix(params, windows, method):
    """Layer l must be pruned with statistics of the model whose layers < l are already pruned and layer l is
    dense: rebuild that hybrid model from the result, measure it with the full calibration pass, prune again."""
    sparsities = np.array([0.4, 0.5, 0.6])
    pruned = prune_with_allocation(CONFIG, params, sparsities, method, windows, batch_size=2)
    for layer in range(CONFIG.num_layers):
        hybrid = jax.tree.map(lambda d, p, layer=layer: p.at[layer:].set(d[layer:]), params["blocks"],
                              pruned["blocks"])
        stats = calibration_stats(CONFIG, {**params, "blocks": hybrid}, windows, hessians=method == "sparsegpt")
        for kind in CONFIG.site_kinds:
            site = stats.site(layer, kind)
            w = params["blocks"][kind]["w"][layer]
            if method == "wanda":
                expected = wanda_prune(w, site.input_norm, float(sparsities[layer]))
            else:
                expected = sparsegpt_prune(w, site.hessian, float(sparsities[layer]))
            np.testing.assert_allclose(pruned["blocks"][kind]["w"][layer], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer_sparsity(CONFIG, pruned), sparsities, atol=0.02)
