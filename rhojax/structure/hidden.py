"""Clean residual states, their loss gradients, and running the network from a cached state.

Every structure analysis starts from the clean states ``h_0 .. h_L`` (``h_t`` enters block ``t``,
``h_L`` is the raw last-block output) and, where a state is modified at layer ``t``, runs only
the blocks ``t .. L-1`` from it: the clean prefix is never recomputed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.eval.perplexity import token_nll
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block, default_positions, embed, forward, num_layers, unembed


def batches(windows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive ``(<= batch_size, T)`` slices of ``windows``."""
    for start in range(0, len(windows), batch_size):
        yield windows[start : start + batch_size]


@functools.partial(jax.jit, static_argnames="config")
def hidden_states(config: ModelConfig, params: dict, tokens: jax.Array) -> jax.Array:
    """``h_0 .. h_L`` stacked: shape ``(L + 1, B, T, D)``."""
    return forward(config, params, tokens, return_hidden=True)[1]


def collect_hidden(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``h_0 .. h_L`` of every window, ``(L + 1, N, T, D)`` float32, computed ``batch_size`` windows at a time."""
    parts = []
    for i, batch in enumerate(batches(windows, batch_size)):
        parts.append(np.asarray(hidden_states(config, params, jnp.asarray(batch)), dtype=np.float32))
        if on_batch is not None:
            on_batch(min((i + 1) * batch_size, len(windows)))
    return np.concatenate(parts, axis=1)


@functools.partial(jax.jit, static_argnames="config")
def hidden_and_gradients(config: ModelConfig, params: dict, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Clean states ``h_t`` and loss gradients ``g_t = d(sum of token NLLs) / d h_t`` for t = 0..L.

    One forward and one backward pass give every layer's gradient: a zero offset ``d_t`` is added
    to each state and ``g_t = d loss / d d_t`` at ``d = 0``. Both outputs are ``(L + 1, B, T, D)``.
    """
    positions = default_positions(tokens)
    h0 = embed(config, params, tokens, positions)

    def loss(offsets):
        def step(h, layer):
            p, d = layer
            h = h + d
            return block(config, p, h, positions), h

        final, inputs = jax.lax.scan(step, h0, (params["blocks"], offsets[:-1]))
        final = final + offsets[-1]
        hidden = jnp.concatenate([inputs, final[None]], axis=0)
        return token_nll(unembed(config, params, final), tokens).sum(), hidden

    zeros = jnp.zeros((num_layers(params) + 1, *h0.shape), h0.dtype)
    grads, hidden = jax.grad(loss, has_aux=True)(zeros)
    return hidden, grads


@functools.partial(jax.jit, static_argnames="config")
def run_from(config: ModelConfig, params: dict, h: jax.Array, start: jax.Array) -> jax.Array:
    """``h_L`` from a state ``h`` (B, T, D) entering block ``start``: blocks ``start .. L-1`` only.

    ``start`` is traced (a ``fori_loop`` bound), so one compilation serves every layer.
    """
    positions = default_positions(h[..., 0])

    def body(layer, state):
        p = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, layer, keepdims=False), params["blocks"])
        return block(config, p, state, positions)

    return jax.lax.fori_loop(start, num_layers(params), body, h)


@functools.partial(jax.jit, static_argnames="config")
def nll_from(config: ModelConfig, params: dict, h: jax.Array, start: jax.Array, tokens: jax.Array) -> jax.Array:
    """Summed token NLL of the batch when ``h`` replaces the state entering block ``start``."""
    return token_nll(unembed(config, params, run_from(config, params, h, start)), tokens).sum()
