"""Calibration statistics: the projection inputs follow the block, sums match a per-layer loop,
and on real SmolLM2 layers SparseGPT <= Wanda <= magnitude in reconstruction error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.compress import INPUT_OF, calibration_stats, compress_matrix
from rhojax.compress.calibration import projection_inputs
from rhojax.models import ModelConfig, block, block_params, forward, init_params
from rhojax.models.transformer import layer_norm, post_norm

CONFIGS = {
    "llama": ModelConfig("llama", vocab_size=50, hidden_size=24, num_layers=3, num_heads=4, num_kv_heads=2,
                         head_dim=6, intermediate_size=40, norm_eps=1e-5, qkv_bias=True),
    "gpt2": ModelConfig("gpt2", vocab_size=50, hidden_size=24, num_layers=2, num_heads=4, num_kv_heads=4,
                        head_dim=6, intermediate_size=40, norm_eps=1e-5, max_position_embeddings=32),
    "gemma3": ModelConfig("gemma3", vocab_size=50, hidden_size=24, num_layers=3, num_heads=4, num_kv_heads=1,
                          head_dim=6, intermediate_size=40, norm_eps=1e-6, qk_norm=True, sliding_window=4,
                          rope_local_theta=100.0, sliding_window_pattern=2, query_pre_attn_scalar=8.0),
}


@pytest.fixture(params=list(CONFIGS), scope="module")
def synthetic(request):
    config = CONFIGS[request.param]
    params = init_params(config, jax.random.PRNGKey(0), scale=0.2)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (5, 12), 0, config.vocab_size)
    return config, params, tokens


def test_projection_inputs_recompose_the_block(synthetic):
    config, params, tokens = synthetic
    _, hidden = forward(config, params, tokens, return_hidden=True)
    positions = jnp.arange(tokens.shape[1])
    for t in range(config.num_layers):
        p, h = block_params(params, t), hidden[t]
        x = projection_inputs(config, p, h, positions)
        np.testing.assert_allclose(x["attn_in"], layer_norm(config, p["attn_norm"], h), rtol=1e-6)
        o_bias = p["o"].get("b", 0.0)
        h_mid = h + post_norm(config, p, "post_attn_norm", x["o_in"] @ p["o"]["w"] + o_bias)
        np.testing.assert_allclose(x["mlp_in"], layer_norm(config, p["mlp_norm"], h_mid), rtol=1e-5, atol=1e-6)
        up = x["mlp_in"] @ p["up"]["w"] + p["up"].get("b", 0.0)
        gate = {"llama": jax.nn.silu, "gemma3": lambda z: jax.nn.gelu(z, approximate=True)}
        expected_hidden = (gate[config.family](x["mlp_in"] @ p["gate"]["w"]) * up if config.family in gate
                           else jax.nn.gelu(up, approximate=True))
        np.testing.assert_allclose(x["down_in"], expected_hidden, rtol=1e-5, atol=1e-6)
        down = x["down_in"] @ p["down"]["w"] + p["down"].get("b", 0.0)
        recomposed = h_mid + post_norm(config, p, "post_mlp_norm", down)
        np.testing.assert_allclose(recomposed, block(config, p, h, positions), rtol=1e-5, atol=1e-5)


def test_calibration_stats_match_a_per_layer_loop(synthetic):
    config, params, tokens = synthetic
    stats = calibration_stats(config, params, np.asarray(tokens), hessians=True, batch_size=2)
    _, hidden = forward(config, params, tokens, return_hidden=True)
    positions = jnp.arange(tokens.shape[1])
    assert stats.tokens == tokens.size
    for t in range(config.num_layers):
        inputs = projection_inputs(config, block_params(params, t), hidden[t], positions)
        for kind in config.site_kinds:
            x = np.asarray(inputs[INPUT_OF[kind]], np.float64).reshape(-1, config.site_shape(kind)[0])
            site = stats.site(t, kind)
            np.testing.assert_allclose(site.input_norm, np.linalg.norm(x, axis=0), rtol=1e-4)
            np.testing.assert_allclose(site.hessian, x.T @ x, rtol=1e-4, atol=1e-4 * np.abs(x.T @ x).max())


def test_calibration_stats_do_not_depend_on_batching(synthetic):
    config, params, tokens = synthetic
    a = calibration_stats(config, params, np.asarray(tokens), batch_size=1)
    b = calibration_stats(config, params, np.asarray(tokens), batch_size=4)
    assert a.hessians is None
    for group in a.sq_norms:
        np.testing.assert_allclose(a.sq_norms[group], b.sq_norms[group], rtol=1e-5)


@pytest.mark.slow
def test_reconstruction_error_ranks_sparsegpt_wanda_magnitude_on_smollm2(smollm2, smollm2_windows):
    """``||X W - X W'||_F`` on the calibration inputs at 50% sparsity, from ``H = X^T X``."""
    config, params = smollm2.config, smollm2.params
    stats = calibration_stats(config, params, smollm2_windows("calibration", 2, 256), hessians=True)

    def error(w, w_pruned, h):
        d = (w - w_pruned).astype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
        return float(jnp.sqrt(jnp.sum((h @ d) * d)))

    for layer, kind in [(0, "q"), (14, "o"), (29, "v")]:
        w = params["blocks"][kind]["w"][layer]
        site = stats.site(layer, kind)
        errors = {m: error(w, compress_matrix(m, w, 0.5, site), site.hessian)
                  for m in ("sparsegpt", "wanda", "magnitude")}
        assert errors["sparsegpt"] <= errors["wanda"] <= errors["magnitude"], (layer, kind, errors)
