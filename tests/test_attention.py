"""The blocked, heads-major attention against a plain NumPy softmax attention and JAX's own attention."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.models import ModelConfig
from rhojax.models.transformer import causal_attention

LLAMA = ModelConfig(family="llama", vocab_size=16, hidden_size=24, num_layers=1, num_heads=6, num_kv_heads=2,
                    head_dim=4, intermediate_size=8, norm_eps=1e-5)


def plain_attention(q, k, v, scale, window=None):
    """One query row at a time in float64: causal (and windowed) softmax over the key rows, GQA by head groups."""
    b, t, h, _ = q.shape
    group = h // k.shape[2]
    out = np.zeros(q.shape)
    for n in range(b):
        for head in range(h):
            for i in range(t):
                keys = [j for j in range(i + 1) if window is None or i - j < window]
                s = np.array([q[n, i, head] @ k[n, j, head // group] for j in keys]) * scale
                w = np.exp(s - s.max())
                out[n, i, head] = (w / w.sum()) @ v[n, keys, head // group]
    return out


def qkv(seed=0, b=2, t=13):
    keys = jax.random.split(jax.random.key(seed), 3)
    return (jax.random.normal(keys[0], (b, t, 6, 4)), jax.random.normal(keys[1], (b, t, 2, 4)),
            jax.random.normal(keys[2], (b, t, 2, 4)))


@pytest.mark.parametrize("window", [None, 5])
@pytest.mark.parametrize("block_rows", [4, 13, 128])
def test_blocked_attention_equals_plain_softmax_attention(window, block_rows):
    config = LLAMA.replace(sliding_window=window)
    q, k, v = qkv()
    out = causal_attention(config, {}, q, k, v, block_rows=block_rows)
    ref = plain_attention(*(np.asarray(a, np.float64) for a in (q, k, v)), config.attention_scale, window)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_gemma3_windows_only_its_local_layers():
    config = LLAMA.replace(family="gemma3", sliding_window=3, rope_local_theta=1e4)
    q, k, v = qkv(1)
    arrays = [np.asarray(a, np.float64) for a in (q, k, v)]
    for sliding, window in ((1.0, 3), (0.0, None)):
        out = causal_attention(config, {"sliding": jnp.float32(sliding)}, q, k, v, block_rows=4)
        np.testing.assert_allclose(out, plain_attention(*arrays, config.attention_scale, window), rtol=1e-5, atol=1e-6)


def test_gradients_and_vmap_match_jax_dot_product_attention():
    q, k, v = qkv(2)
    ours = functools.partial(causal_attention, LLAMA, {}, block_rows=4)

    def theirs(q, k, v):
        return jax.nn.dot_product_attention(q, k, v, scale=LLAMA.attention_scale, is_causal=True)

    loss = lambda f: lambda q, k, v: jnp.sum(jnp.sin(f(q, k, v)))  # noqa: E731
    for g_ours, g_theirs in zip(jax.jit(jax.grad(loss(ours), argnums=(0, 1, 2)))(q, k, v),
                                jax.grad(loss(theirs), argnums=(0, 1, 2))(q, k, v), strict=True):
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-5)
    stacked = jax.vmap(ours)(q[:, None], k[:, None], v[:, None])[:, 0]
    np.testing.assert_allclose(stacked, theirs(q, k, v), rtol=1e-5, atol=1e-6)
