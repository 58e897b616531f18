"""Drift, compression-induced perturbations, absorption and correlations against plain implementations."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rhojax.compress.magnitude import magnitude_prune
from rhojax.compress.model import compress_sites
from rhojax.models import ModelConfig, block_params, forward, init_params, run_blocks
from rhojax.models import block as rhojax_block
from rhojax.propagation import (
    absorption,
    absorption_coefficients,
    compression_drift,
    compression_profile,
    correlation,
    directions,
    drift_tracks,
    injection_drift,
    injection_drifts,
    scale_aggregate,
    scale_tokenwise,
)

CONFIG = ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=48, norm_eps=1e-5)


#: The model's block, jitted so the plain loops below run at compiled speed (one sample at a time).
block = jax.jit(rhojax_block, static_argnums=0)


def small_model(seed: int = 0):
    params = init_params(CONFIG, jax.random.key(seed))
    tokens = jax.random.randint(jax.random.key(seed + 1), (2, 10), 0, CONFIG.vocab_size)
    _, hidden = forward(CONFIG, params, tokens, return_hidden=True)
    return params, tokens, hidden


def plain_tracks(params, hidden, layer, e):
    """Python loop over the suffix blocks, one sample at a time, relative errors in float64."""
    positions = jnp.arange(hidden.shape[-2])
    clean = np.asarray(hidden, np.float64)
    out = np.zeros((len(e), CONFIG.num_layers + 1))
    for k in range(len(e)):
        h = hidden[layer] + e[k]
        out[k, layer] = np.linalg.norm(np.asarray(h, np.float64) - clean[layer]) / np.linalg.norm(clean[layer])
        for s in range(layer, CONFIG.num_layers):
            h = block(CONFIG, block_params(params, s), h, positions)
            out[k, s + 1] = np.linalg.norm(np.asarray(h, np.float64) - clean[s + 1]) / np.linalg.norm(clean[s + 1])
    return out


def test_drift_tracks_equal_plain_suffix_loop():
    params, _, hidden = small_model()
    for layer in (0, 2, CONFIG.num_layers - 1):
        e = scale_aggregate(directions(jax.random.key(1), layer, 3, hidden.shape[1:]), hidden[layer], 0.05)
        agg, _ = drift_tracks(CONFIG, params, hidden, layer, e)
        np.testing.assert_allclose(agg, plain_tracks(params, hidden, layer, e), rtol=1e-4, atol=1e-7)


def test_batched_drifts_equal_one_suffix_run_per_scaling_eps_and_layer():
    """The one-batch-per-layer program equals separate suffix runs, one per (scaling, eps, layer), as before."""
    params, _, hidden = small_model()
    key, eps_values = jax.random.key(3), (1e-3, 0.2, 0.05)
    runs = injection_drifts(CONFIG, params, hidden, key, eps_values=eps_values, samples=2,
                            scalings=("aggregate", "tokenwise"))
    for scaling, scale in (("aggregate", scale_aggregate), ("tokenwise", scale_tokenwise)):
        assert [r.eps for r in runs[scaling]] == list(eps_values)
        for run, eps in zip(runs[scaling], eps_values, strict=True):
            assert run.scaling == scaling and run.aggregate.shape == (CONFIG.num_layers, 2, CONFIG.num_layers + 1)
            for layer in range(CONFIG.num_layers):
                e = scale(directions(key, layer, 2, hidden.shape[1:]), hidden[layer], eps)
                agg, tok = drift_tracks(CONFIG, params, hidden, layer, e)
                np.testing.assert_allclose(run.aggregate[layer], agg, rtol=2e-5, atol=1e-8)
                np.testing.assert_allclose(run.tokenwise[layer], tok, rtol=2e-5, atol=1e-8)


def test_injection_at_layer_zero_matches_perturbed_full_forward():
    """R_L of an injection at h_0 equals the relative change of a full forward from perturbed embeddings."""
    params, tokens, hidden = small_model()
    run = injection_drift(CONFIG, params, hidden, jax.random.key(4), eps=0.1, samples=2)
    e = scale_aggregate(directions(jax.random.key(4), 0, 2, hidden.shape[1:]), hidden[0], 0.1)
    for k in range(2):
        h_l = run_blocks(CONFIG, params["blocks"], hidden[0] + e[k], jnp.arange(tokens.shape[1]))
        ref = float(jnp.linalg.norm(h_l - hidden[-1]) / jnp.linalg.norm(hidden[-1]))
        np.testing.assert_allclose(run.aggregate[0, k, -1], ref, rtol=1e-4)


def test_compression_drift_equals_compressing_one_block_in_a_real_forward():
    params, tokens, hidden = small_model()
    compressed = compress_sites(params, lambda w, t, kind: magnitude_prune(w, 0.5), CONFIG.site_kinds)
    measured, _ = compression_drift(CONFIG, params, compressed, hidden)
    prof = compression_profile(CONFIG, params, compressed, hidden)
    for t in range(CONFIG.num_layers):
        blocks = jax.tree.map(lambda d, c, t=t: d.at[t].set(c[t]), params["blocks"], compressed["blocks"])
        _, h = forward(CONFIG, {**params, "blocks": blocks}, tokens, return_hidden=True)
        ref = np.linalg.norm(np.asarray(h[-1] - hidden[-1], np.float64)) / np.linalg.norm(np.asarray(hidden[-1]))
        np.testing.assert_allclose(measured[t], ref, rtol=1e-3)
        err = np.linalg.norm(np.asarray(h[t + 1] - hidden[t + 1], np.float64))
        np.testing.assert_allclose(prof.eps[t], err / np.linalg.norm(np.asarray(hidden[t])), rtol=1e-3)


def test_compress_sites_applies_the_operator_to_every_matrix():
    params, _, _ = small_model()
    compressed = compress_sites(params, lambda w, t, kind: magnitude_prune(w, 0.5), CONFIG.site_kinds)
    for kind in CONFIG.site_kinds:
        w, c = params["blocks"][kind]["w"], compressed["blocks"][kind]["w"]
        for t in range(CONFIG.num_layers):
            np.testing.assert_array_equal(c[t], magnitude_prune(w[t], 0.5))
    np.testing.assert_array_equal(compressed["blocks"]["attn_norm"]["scale"], params["blocks"]["attn_norm"]["scale"])


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (3, 2, 4), elements=st.floats(1e-3, 1e3)))
def test_absorption_coefficients_match_definition(values):
    layers, samples = 3, 2
    tracks = np.zeros((layers, samples, layers + 1))
    for l in range(layers):
        tracks[l, :, l:] = values[l, :, : layers + 1 - l]
    r, u = absorption_coefficients(tracks)
    for l in range(layers):
        expected = np.mean([tracks[l, k, -1] / tracks[l, k, l] for k in range(samples)])
        np.testing.assert_allclose(r[l], expected, rtol=1e-12)
        np.testing.assert_allclose(u[l], min(max(math.log(expected), -math.log(3)), math.log(3)), rtol=1e-12)


def test_absorption_runs_each_eps_with_shared_directions():
    params, _, hidden = small_model()
    a = absorption(CONFIG, params, hidden, jax.random.key(2), eps_values=[1e-3, 0.5], samples=2)
    assert a.r.shape == (2, CONFIG.num_layers) and a.tracks.shape == (2, CONFIG.num_layers, 2, CONFIG.num_layers + 1)
    for i, eps in enumerate([1e-3, 0.5]):
        np.testing.assert_allclose(np.diagonal(a.tracks[i], axis1=0, axis2=2), eps, rtol=1e-5)


def test_correlation_of_monotone_relations():
    x = np.geomspace(1e-3, 1.0, 12)
    up = correlation(x, x**3 + 1e-9, seed=0, boots=200)
    assert up["spearman"] == 1.0 and np.allclose(up["spearman_ci"], 1.0) and up["pearson_log10"] > 0.999
    down = correlation(x, 1 / x, seed=0, boots=200)
    assert down["spearman"] == -1.0 and down["pearson_log10"] < -0.999
    rng = np.random.default_rng(1)
    noisy = correlation(x, x * np.exp(rng.normal(0, 2, 12)), seed=0, boots=200)
    assert noisy["spearman_ci"][0] <= noisy["spearman"] <= noisy["spearman_ci"][1]
