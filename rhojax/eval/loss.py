"""Traceable next-token NLL: per-window sums and counts, the mean loss and perplexity.

For windows ``tokens`` (..., T) and an optional target ``mask`` of the same shape (``mask[..., i]``
weights the prediction of ``tokens[..., i]`` from ``tokens[..., :i]``; position 0 is never predicted, so
``mask[..., 0]`` is ignored), with ``nll_i = -log p(x_i | x_<i)``:

    sums   = sum_{i=1}^{T-1} mask_i * nll_i           shape tokens.shape[:-1]
    counts = sum_{i=1}^{T-1} mask_i                   shape tokens.shape[:-1]
    loss   = sum(sums) / sum(counts)                  scalar (mean NLL per scored token)
    ppl    = exp(loss)

Without a mask every text token is scored, so ``counts = T - 1`` per window and ``ppl`` is exactly the
perplexity of docs/definitions.md#perplexity. Every function takes and returns ``jax.Array`` and works
under ``jax.jit``, ``jax.vmap`` (for instance over two params trees) and ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rhojax.errors import RhojaxError
from rhojax.eval.perplexity import token_nll
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import forward


def _window_sums(config: ModelConfig, params: dict, tokens: jax.Array, mask: jax.Array | None):
    nll = token_nll(forward(config, params, tokens), tokens)  # (..., T - 1)
    if mask is None:
        return nll.sum(-1), jnp.full(nll.shape[:-1], nll.shape[-1], jnp.float32)
    weights = jnp.asarray(mask, jnp.float32)[..., 1:]
    return (nll * weights).sum(-1), weights.sum(-1)


def nll_sums(
    config: ModelConfig,
    params: dict,
    tokens: jax.Array,
    mask: jax.Array | None = None,
    *,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Summed NLL and number of scored tokens of every window: two arrays of shape ``tokens.shape[:-1]``.

    ``batch_size`` (windows (N, T) only) runs ``batch_size`` windows at a time with ``jax.lax.map`` to bound
    memory (the logits of a batch are ``batch_size x T x V`` floats); None runs all windows at once.
    """
    tokens = jnp.asarray(tokens)
    if tokens.ndim < 1 or tokens.shape[-1] < 2:
        raise RhojaxError(f"tokens of shape {tokens.shape}: a window needs at least 2 tokens on the last axis")
    if mask is not None and jnp.shape(mask) != tokens.shape:
        raise RhojaxError(f"mask of shape {jnp.shape(mask)} must have the shape of tokens {tokens.shape}")
    if batch_size is None:
        return _window_sums(config, params, tokens, mask)
    if tokens.ndim != 2 or batch_size < 1:
        raise RhojaxError(f"batch_size={batch_size} needs windows of shape (N, T) and a positive batch size")
    placeholder = jnp.zeros_like(tokens) if mask is None else jnp.asarray(mask)

    def one_window(x):
        sums, counts = _window_sums(config, params, x[0][None], None if mask is None else x[1][None])
        return sums[0], counts[0]

    return jax.lax.map(one_window, (tokens, placeholder), batch_size=batch_size)

def mean_nll(
    config: ModelConfig,
    params: dict,
    tokens: jax.Array,
    mask: jax.Array | None = None,
    *,
    batch_size: int | None = None,
) -> jax.Array:
    """The mean next-token NLL over every scored token of ``tokens`` (scalar): ``sum(sums) / sum(counts)``."""
    sums, counts = nll_sums(config, params, tokens, mask, batch_size=batch_size)
    return sums.sum() / counts.sum()
