"""Site bounds: the float64 block equals the model's block, certified spectral bounds, zero violations on a
random llama, and mutations that must be caught (wrong RTN grid, a pruner changing a kept weight, a site
bound missing ||W_down||_2 on SmolLM2's real weights)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.bounds import site
from rhojax.bounds.levels import Level
from rhojax.bounds.operators import FLOAT32_TOLERANCE, pruning_offence, rtn_grid_offence
from rhojax.bounds.site_study import evaluate_sites, spearman, summarize_sites
from rhojax.compress import calibration_stats, compress_matrix
from rhojax.models.config import ModelConfig
from rhojax.models.params import init_params
from rhojax.models.transformer import block, block_params

CONFIG = ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=64, norm_eps=1e-5)
LEVELS = (Level("rtn", 3), Level("magnitude", 0.5), Level("wanda", 0.5), Level("rtn", 4, group_size=16))


@functools.cache
def _setup():
    params = init_params(CONFIG, jax.random.PRNGKey(0))
    windows = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, 12)).astype(np.int32)
    return params, windows, calibration_stats(CONFIG, params, windows)


def test_float64_block_matches_the_model_block():
    params, _, _ = _setup()
    p = block_params(params, 1)
    h = np.random.default_rng(1).standard_normal((10, CONFIG.hidden_size)).astype(np.float32)
    reference = np.asarray(block(CONFIG, p, jnp.asarray(h), jnp.arange(10)))
    np.testing.assert_allclose(site.block_forward(CONFIG, p, h).out, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(40, 40), (30, 70), (90, 20)])
def test_spectral_upper_bounds_are_certified_and_gram_is_tight(shape):
    w = np.random.default_rng(sum(shape)).standard_normal(shape)
    w[:, 0] *= 20  # an outlier column
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    assert site.schur_bound(w) >= sigma and np.linalg.norm(w) >= sigma
    gram = site.gram_bound(w, iterations=6)
    assert sigma * (1 - 1e-12) <= gram <= sigma * min(shape) ** (1 / 2**7) * (1 + 1e-12)
    assert site.spectral_upper(w) == pytest.approx(gram)


def test_spearman_closed_forms():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2)


@functools.cache
def _random_rows():
    params, windows, stats = _setup()
    return evaluate_sites(CONFIG, params, windows, LEVELS, stats=stats, key=jax.random.PRNGKey(2))


def test_site_bounds_hold_on_a_random_llama_for_every_kind_and_level():
    rows = _random_rows()
    assert len(rows) == CONFIG.num_layers * len(site.SITE_KINDS) * len(LEVELS)
    summary = summarize_sites(rows)
    assert summary["violations"] == 0, summary["violating_rows"]
    for kind, entry in summary["by_kind"].items():
        assert entry["tightness"]["min"] >= 1 - 1e-9, kind
    assert summary["by_kind"]["down"]["tightness"]["max"] == pytest.approx(1.0)  # linear: exact
    assert all(r["operator_offence"] is not None for r in rows if r["method"] in ("rtn", "magnitude", "wanda"))


def test_summary_correlates_with_a_sweep():
    rows = [r for r in _random_rows() if r["level"] == "rtn:3"]
    sweep = [{"layer": r["layer"], "kind": r["kind"], "method": "rtn", "level": 3.0, "ppl_ratio": 1 + r["bound"]}
             for r in rows]
    entry = summarize_sites(rows, sweep)["spearman"]["rtn:3"]
    assert entry["sites"] == len(rows) and entry["bound_vs_ppl_ratio"] == pytest.approx(1.0)


def test_a_bound_missing_a_factor_is_caught_on_a_random_llama():
    """Half of every site bound: some token of some site must then exceed it."""
    params, windows, stats = _setup()

    def halved(*args):
        return tuple(b / 2 for b in site.site_bound(*args))

    rows = evaluate_sites(CONFIG, params, windows, (Level("rtn", 3),), key=jax.random.PRNGKey(2), bound_fn=halved)
    assert {r["kind"] for r in rows if not r["holds"]} >= {"o", "down"}


@pytest.mark.parametrize("bits,group", [(3, None), (4, 16), (8, None)])
def test_rtn_operator_is_on_its_grid_and_a_wrong_grid_is_caught(bits, group):
    w = np.random.default_rng(bits).standard_normal((32, 12)).astype(np.float32)
    quantized = np.asarray(compress_matrix("rtn", jnp.asarray(w), bits, group_size=group))
    assert rtn_grid_offence(w, quantized, bits, group) <= FLOAT32_TOLERANCE
    for levels in (2**bits - 1, 2 ** (bits - 1) - 2 if bits > 2 else 0.5):  # finer and coarser grids
        step = np.abs(w).max(axis=0, keepdims=True) / levels
        wrong = np.round(w / step) * step
        assert rtn_grid_offence(w, wrong, bits, None) > 0.05, levels


def test_rtn_rounds_ties_to_even_like_the_coq_model():
    """Step 1 (3 bits, max 3): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0 (half to even, as jnp.round)."""
    w = np.array([[3.0], [0.5], [1.5], [2.5], [-0.5]], np.float32)
    quantized = np.asarray(compress_matrix("rtn", jnp.asarray(w), 3))
    np.testing.assert_array_equal(quantized[:, 0], [3.0, 0.0, 2.0, 2.0, 0.0])
    assert rtn_grid_offence(w, quantized, 3) == 0.0


@pytest.mark.parametrize("method,level,nm",
                         [("magnitude", 0.5, None), ("wanda", 0.5, None), ("magnitude", None, (2, 4))])
def test_pruning_keeps_weights_and_a_changed_kept_weight_is_caught(method, level, nm):
    params, _, stats = _setup()
    w = params["blocks"]["up"]["w"][0]
    pruned = np.asarray(compress_matrix(method, w, level, stats.site(0, "up"), nm=nm))
    assert pruning_offence(w, pruned) == 0.0
    kept = np.argwhere(pruned != 0)[0]
    tampered = pruned.copy()
    tampered[tuple(kept)] *= 1.01
    assert pruning_offence(w, tampered) == pytest.approx(0.01, rel=1e-3)


@pytest.mark.slow
def test_site_bounds_on_smollm2_hold_and_a_missing_w_down_factor_is_caught(smollm2, smollm2_windows):
    """Two layers, one window of 32 tokens, RTN 3-bit: zero violations; without S(W_down) the up and gate
    bounds fall below the measured change."""
    config, params = smollm2.config, smollm2.params
    windows = smollm2_windows("calibration", 1, 32)
    kinds = ("o", "gate", "up", "down")
    rows = evaluate_sites(config, params, windows, (Level("rtn", 3),), key=jax.random.PRNGKey(0), layers=(3, 20),
                          kinds=kinds)
    assert summarize_sites(rows)["violations"] == 0

    def without_down(config, p, clean, kind, w2, norms):
        return site.site_bound(config, p, clean, kind, w2, {**norms, "down": 1.0})

    wrong = evaluate_sites(config, params, windows, (Level("rtn", 3),), key=jax.random.PRNGKey(0), layers=(3, 20),
                           kinds=("gate", "up"), bound_fn=without_down)
    assert all(not r["holds"] for r in wrong)
