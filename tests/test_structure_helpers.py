"""Small synthetic models and plain (loop) reference implementations for the structure tests."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.eval.perplexity import token_nll
from rhojax.models import ModelConfig, block, block_params, embed, init_params, unembed

TINY = ModelConfig(
    family="llama", vocab_size=48, hidden_size=16, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=4,
    intermediate_size=32, norm_eps=1e-5, tie_embeddings=True, name="tiny",
)


def tiny_model(seed: int = 0) -> tuple[ModelConfig, dict]:
    return TINY, init_params(TINY, jax.random.PRNGKey(seed), scale=0.3)


def tiny_windows(num: int = 4, seq_len: int = 24, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    windows = rng.integers(2, TINY.vocab_size, size=(num, seq_len), dtype=np.int32)
    windows[:, 0] = 1  # a BOS-like first token, as in real windows
    return windows


@functools.partial(jax.jit, static_argnums=0)
def loop_states(config, params, tokens) -> list[jax.Array]:
    """``h_0 .. h_L`` by a plain Python loop over blocks."""
    positions = jnp.arange(tokens.shape[-1])
    states = [embed(config, params, tokens, positions)]
    for t in range(config.num_layers):
        states.append(block(config, block_params(params, t), states[-1], positions))
    return states


@functools.partial(jax.jit, static_argnums=(0, 3))
def loop_nll_from(config, params, h, start, tokens) -> jax.Array:
    """Summed token NLL when ``h`` enters block ``start``, by a plain loop."""
    positions = jnp.arange(tokens.shape[-1])
    for t in range(start, config.num_layers):
        h = block(config, block_params(params, t), h, positions)
    return token_nll(unembed(config, params, h), tokens).sum()
