"""The contraction profile against independent plain implementations and closed-form cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhojax.errors import RhojaxError
from rhojax.models import ModelConfig, block_params, forward, init_params
from rhojax.models import block as rhojax_block
from rhojax.propagation import (
    downstream_amplification,
    jacobian_gain,
    lyapunov_trajectory,
    rho_profile,
    top_singular_value,
)
from rhojax.propagation.profile import layer_statistics

LLAMA = ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=2,
                    head_dim=8, intermediate_size=48, norm_eps=1e-5)
GPT2 = ModelConfig(family="gpt2", vocab_size=64, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=4,
                   head_dim=8, intermediate_size=64, norm_eps=1e-5, max_position_embeddings=64)
GEMMA3 = ModelConfig(family="gemma3", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=1,
                     head_dim=8, intermediate_size=48, norm_eps=1e-6, qk_norm=True, sliding_window=5,
                     rope_local_theta=100.0, sliding_window_pattern=2, query_pre_attn_scalar=16.0)


#: The model's block, jitted so the plain loops below run at compiled speed (one sample at a time).
block = jax.jit(rhojax_block, static_argnums=0)


def small_model(config: ModelConfig, seed: int = 0, windows: int = 2, seq_len: int = 12):
    params = init_params(config, jax.random.key(seed))
    tokens = jax.random.randint(jax.random.key(seed + 1), (windows, seq_len), 0, config.vocab_size)
    _, hidden = forward(config, params, tokens, return_hidden=True)
    return params, hidden


def plain_profile(config, params, hidden, key, eps, samples):
    """Per-layer, per-sample Python loop in float64 NumPy around single-sample block calls."""
    hidden = np.asarray(hidden, np.float64)
    positions = jnp.arange(hidden.shape[-2])
    rows = []
    for t in range(config.num_layers):
        p = block_params(params, t)
        h_in, h_out = hidden[t], hidden[t + 1]
        tok_alpha = np.linalg.norm(h_out, axis=-1) / np.linalg.norm(h_in, axis=-1)
        beta, tok_mean, tok_median, sink, lin = [], [], [], [], []
        for k in range(samples):
            g = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, t), k), h_in.shape),
                           np.float64)
            e = eps * g * np.linalg.norm(h_in) / np.linalg.norm(g)
            d = np.asarray(block(config, p, jnp.asarray(h_in + e, jnp.float32), positions), np.float64) - h_out
            beta.append(np.linalg.norm(d) / np.linalg.norm(e))
            e_tok = eps * g * (np.linalg.norm(h_in, axis=-1) / np.linalg.norm(g, axis=-1))[..., None]
            d_tok = np.asarray(block(config, p, jnp.asarray(h_in + e_tok, jnp.float32), positions),
                               np.float64) - h_out
            rho_tok = np.linalg.norm(d_tok, axis=-1) / np.linalg.norm(e_tok, axis=-1) / tok_alpha
            tok_mean.append(rho_tok[:, 1:].mean())
            tok_median.append(np.median(rho_tok[:, 1:]))
            sink.append(rho_tok[:, 0].mean())
            unit = g / np.linalg.norm(g) * np.linalg.norm(h_in)
            _, jv = jax.jvp(lambda x, p=p: block(config, p, x, positions),
                            (jnp.asarray(h_in, jnp.float32),), (jnp.asarray(unit, jnp.float32),))
            lin.append(np.linalg.norm(np.asarray(jv, np.float64)) / np.linalg.norm(unit))
        alpha = np.linalg.norm(h_out) / np.linalg.norm(h_in)
        rows.append({"alpha": alpha, "rho": np.array(beta) / alpha, "token_rho_mean": np.array(tok_mean),
                     "token_rho_median": np.array(tok_median), "sink_rho": np.array(sink),
                     "rho_linear": np.array(lin) / alpha, "token_alpha": tok_alpha[:, 1:].mean()})
    return {name: np.stack([r[name] for r in rows]) for name in rows[0]}


@pytest.mark.parametrize(("config", "layer_batch"), [(LLAMA, 1), (LLAMA, 2), (GPT2, 3), (GEMMA3, 2)],
                         ids=["llama-scan", "llama-vmap2", "gpt2-vmap", "gemma3-vmap2"])
def test_profile_equals_plain_loop(config, layer_batch):
    params, hidden = small_model(config)
    key = jax.random.key(7)
    prof = rho_profile(config, params, hidden, key, eps=0.1, samples=3, layer_batch=layer_batch)
    ref = plain_profile(config, params, hidden, key, eps=0.1, samples=3)
    for name in ref:
        got = getattr(prof, name)
        np.testing.assert_allclose(got, ref[name], rtol=1e-5, err_msg=name)


def test_one_version_computes_only_its_own_statistics_and_equals_the_plain_loop():
    params, hidden = small_model(LLAMA)
    key = jax.random.key(7)
    ref = plain_profile(LLAMA, params, hidden, key, eps=0.1, samples=2)
    agg = rho_profile(LLAMA, params, hidden, key, eps=0.1, samples=2, linearised=False, versions=("aggregate",))
    tok = rho_profile(LLAMA, params, hidden, key, eps=0.1, samples=2, linearised=False, versions=("tokenwise",))
    np.testing.assert_allclose(agg.rho, ref["rho"], rtol=1e-5)
    for name in ("token_rho_mean", "token_rho_median", "sink_rho", "token_alpha"):
        np.testing.assert_allclose(getattr(tok, name), ref[name], rtol=1e-5, err_msg=name)
    assert agg.token_rho_mean is None and tok.rho is None and tok.beta is None
    assert "token_rho_mean" not in agg.to_dict() and "rho" not in tok.to_dict()
    assert "downstream_tokenwise" in tok.to_dict()
    with pytest.raises(RhojaxError, match="token_rho_mean"):
        agg.mean("token_rho_mean")
    with pytest.raises(RhojaxError, match="versions"):
        rho_profile(LLAMA, params, hidden, key, versions=("both",))


def test_exact_linear_map_gives_analytic_beta():
    """For f(x) = x @ M with M = c Q (Q orthogonal): alpha = beta = c and rho = 1 for every perturbation;
    for a general M the linearised gain is ||g M|| / ||g||, and the power-iteration gain is sigma_max(M)."""
    rng = np.random.default_rng(0)
    d = 16
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    h = jnp.asarray(rng.standard_normal((2, 5, d)), jnp.float32)
    g = jax.random.normal(jax.random.key(1), (4, 2, 5, d))
    sink = jnp.zeros(5, bool).at[0].set(True)
    c = 1.7
    f = lambda x: x @ jnp.asarray(c * q, jnp.float32)  # noqa: E731
    s = layer_statistics(f, h, f(h), g, 0.3, sink, linearised=True)
    for name in ("beta", "beta_linear"):
        np.testing.assert_allclose(s[name], c, rtol=1e-5)
    np.testing.assert_allclose(s["alpha"], c, rtol=1e-5)
    np.testing.assert_allclose(s["token_rho_mean"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(s["sink_rho"], 1.0, rtol=1e-5)

    m = rng.standard_normal((d, d))
    f = lambda x: x @ jnp.asarray(m, jnp.float32)  # noqa: E731
    s = layer_statistics(f, h, f(h), g, 0.3, sink, linearised=True)
    gn = np.asarray(g, np.float64)
    expected = np.sqrt(((gn @ m) ** 2).sum(axis=(1, 2, 3)) / (gn**2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(s["beta_linear"], expected, rtol=1e-5)
    np.testing.assert_allclose(s["beta"], expected, rtol=1e-4)  # exact map: finite eps = linearised
    sigma = top_singular_value(f, h, g[0], iterations=300)
    np.testing.assert_allclose(float(sigma), np.linalg.svd(m, compute_uv=False)[0], rtol=1e-4)


def test_finite_eps_rho_approaches_linearised_value():
    config = LLAMA
    params, _ = small_model(config)
    tokens = jax.random.randint(jax.random.key(5), (2, 12), 0, config.vocab_size)
    with jax.enable_x64(True):
        params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        _, hidden64 = forward(config, params64, tokens, return_hidden=True)
        gaps = []
        for eps in (1e-1, 1e-2, 1e-3):
            prof = rho_profile(config, params64, hidden64, jax.random.key(3), eps=eps, samples=2)
            gaps.append(np.max(np.abs(prof.rho / prof.rho_linear - 1)))
    # the gap is O(eps): it shrinks about tenfold per decade of eps (below 1e-3 the float32 norms of
    # the model's RMSNorm set a floor near 3e-5)
    assert all(b < 0.2 * a for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[-1] < 1e-4, gaps


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), eps=st.sampled_from([1e-3, 1e-2]))
def test_power_iteration_gain_bounds_every_sampled_beta(seed, eps):
    config = LLAMA.replace(num_layers=2)
    params, hidden = small_model(config, seed=seed)
    gain = jacobian_gain(config, params, hidden, jax.random.key(seed), iterations=40)
    prof = rho_profile(config, params, hidden, jax.random.key(seed + 1), eps=eps, samples=6)
    assert np.all(prof.beta_linear <= gain.beta_max[:, None] * (1 + 1e-4))
    assert np.all(prof.beta <= gain.beta_max[:, None] * (1 + 1e-2))
    np.testing.assert_allclose(gain.rho_max, gain.beta_max / prof.alpha, rtol=1e-5)


def test_downstream_product_and_lyapunov_recursion():
    rho = np.array([1.3, 0.7, 1.1, 0.95])
    expected = [np.prod(rho[t:]) for t in range(len(rho))]
    np.testing.assert_allclose(downstream_amplification(rho), expected)
    v = lyapunov_trajectory(rho, 0.01)
    assert v[0] == 0.01
    for t in range(len(rho)):
        np.testing.assert_allclose(v[t + 1], rho[t] ** 2 * v[t])
