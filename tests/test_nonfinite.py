"""NaN/Inf arising inside the forward pass is located at its first layer and stage, never averaged away."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.errors import NumericalError
from rhojax.eval.perplexity import perplexity
from rhojax.models import ModelConfig, forward, init_params, locate_nonfinite

LLAMA = ModelConfig("llama", vocab_size=40, hidden_size=16, num_layers=10, num_heads=4, num_kv_heads=2,
                    head_dim=4, intermediate_size=24, norm_eps=1e-5)
GEMMA = ModelConfig("gemma3", vocab_size=40, hidden_size=16, num_layers=10, num_heads=2, num_kv_heads=1,
                    head_dim=8, intermediate_size=24, norm_eps=1e-6, qk_norm=True, sliding_window=3,
                    rope_local_theta=100.0, sliding_window_pattern=3)
TOKENS = jnp.asarray(np.random.default_rng(0).integers(0, 40, size=(2, 12)))
F32_MAX = float(np.finfo(np.float32).max)


def _set(params, path, layer, value):
    """A copy of ``params`` with ``blocks/path`` of ``layer`` (or the top-level ``path``) set to ``value``."""
    params = jax.tree.map(lambda a: a, params)
    node = params["blocks"] if layer is not None else params
    *parents, leaf = path.split("/")
    for part in parents:
        node = node[part]
    node[leaf] = node[leaf].at[layer].set(value) if layer is not None else jnp.full_like(node[leaf], value)
    return params


def _overflowing_mlp(config, layer, dtype=jnp.float32):
    """Finite weights whose MLP output overflows at ``layer``: gate = up = 10 everywhere, so every hidden
    unit equals ``act(10 s) * 10 s >= 0`` (``s`` the sum of the normed input), and down = the float32 maximum."""
    params = jax.tree.map(lambda a: a.astype(dtype), init_params(config, jax.random.PRNGKey(0)))
    params = _set(_set(params, "gate/w", layer, 10.0), "up/w", layer, 10.0)
    return _set(params, "down/w", layer, F32_MAX)


@pytest.mark.parametrize("config", [LLAMA, GEMMA], ids=["llama", "gemma3"])
def test_overflowing_mlp_in_block_7_is_reported_as_layer_7_mlp(config):
    params = _overflowing_mlp(config, 7)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(params))
    fault = locate_nonfinite(config, params, TOKENS)
    assert (fault.layer, fault.stage, fault.step) == (7, "mlp", "mlp")
    assert "layer 7, mlp" in fault.describe()


@pytest.mark.parametrize(
    "path, layer, value, expected",
    [
        ("q/w", 3, 1e30, (3, "attention")),  # scores overflow, softmax of Inf - Inf gives NaN
        ("mlp_norm/scale", 5, jnp.nan, (5, "norm")),
        ("embed", None, jnp.inf, (None, "embedding")),
        ("lm_head/w", None, F32_MAX, (None, "logits")),  # finite normed state, logits overflow
        ("final_norm/scale", None, jnp.nan, (None, "norm")),
    ],
)
def test_each_stage_is_located(path, layer, value, expected):
    params = _set(init_params(LLAMA, jax.random.PRNGKey(0)), path, layer, value)
    if path == "q/w":
        params = _set(params, "k/w", 3, 1e30)
    fault = locate_nonfinite(LLAMA, params, TOKENS)
    assert (fault.layer, fault.stage) == expected


def test_finite_model_has_no_fault():
    assert locate_nonfinite(LLAMA, init_params(LLAMA, jax.random.PRNGKey(0)), TOKENS) is None


def test_bfloat16_overflow_is_located():
    fault = locate_nonfinite(LLAMA, _overflowing_mlp(LLAMA, 2, jnp.bfloat16), TOKENS)
    assert (fault.layer, fault.stage) == (2, "mlp")


def test_perplexity_refuses_to_average_a_fault():
    params = _overflowing_mlp(LLAMA, 7)
    assert not np.all(np.isfinite(np.asarray(forward(LLAMA, params, TOKENS))))
    with pytest.raises(NumericalError, match=r"2 of 2 windows .* first NaN/Inf at layer 7, mlp"):
        perplexity(LLAMA, params, np.asarray(TOKENS), batch_size=2)
