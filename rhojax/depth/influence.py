"""ShortGPT Block Influence ``BI_t = 1 - mean_tokens cos(h_t, h_{t+1})``, streamed per token.

The layer stack is scanned once per batch; each step emits only the per-token cosine of its
input and output, so memory is O(tokens) per layer instead of the (L + 1) x tokens x D of
stored hidden states.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block, default_positions, embed


@dataclasses.dataclass(frozen=True)
class BlockInfluence:
    """Per-layer Block Influence: over all tokens (ShortGPT's reading, used for ranking) and without BOS.

    - ``bi`` (L,): ``1 - mean over every token of cos(h_t, h_{t+1})``;
    - ``bi_without_bos`` (L,): the same mean over positions >= 1 (the attention-sink token excluded);
    - ``tokens``: the number of tokens averaged over (static).

    A pytree (``bi`` and ``bi_without_bos`` are leaves, ``tokens`` is static), so the traceable
    :func:`influence_statistics` can return one from inside ``jax.jit`` or ``jax.vmap``.
    """

    bi: np.ndarray
    bi_without_bos: np.ndarray
    tokens: int

    def to_dict(self) -> dict:
        """Plain data for JSON: ``bi`` and ``bi_without_bos`` as lists, and ``tokens``."""
        return {"bi": self.bi.tolist(), "bi_without_bos": self.bi_without_bos.tolist(), "tokens": self.tokens}


def cosine(a: jax.Array, b: jax.Array) -> jax.Array:
    """Cosine similarity along the last axis, in float32."""
    a = a.astype(jnp.float32)
    b = b.astype(jnp.float32)
    return jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1))


@functools.partial(jax.jit, static_argnames="config")
def token_cosines(config: ModelConfig, params: dict, tokens: jax.Array) -> jax.Array:
    """``cos(h_t, h_{t+1})`` for every layer and token: shape (L, *tokens.shape)."""
    positions = default_positions(tokens)

    def step(h, p):
        out = block(config, p, h, positions)
        return out, cosine(h, out)

    _, cos = jax.lax.scan(step, embed(config, params, tokens, positions), params["blocks"])
    return cos


def influence_statistics(config: ModelConfig, params: dict, tokens: jax.Array) -> BlockInfluence:
    """The traceable core of :func:`block_influence`: Block Influence over windows ``tokens`` (N, T) in one call.

    Returns a :class:`BlockInfluence` with ``jax.Array`` fields; works under ``jax.jit`` and ``jax.vmap``.
    """
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise RhojaxError(f"tokens of shape {tokens.shape}: give windows of shape (N, T) with T >= 2")
    cos = token_cosines(config, params, tokens).astype(jnp.float32)  # (L, N, T)
    return BlockInfluence(
        bi=1.0 - cos.mean(axis=(1, 2)),
        bi_without_bos=1.0 - cos[:, :, 1:].mean(axis=(1, 2)),
        tokens=int(tokens.size),
    )


def block_influence(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    *,
    batch_size: int = 4,
    on_batch: Callable[[int], None] | None = None,
) -> BlockInfluence:
    """Block Influence of every layer over ``(N, T)`` windows, ``batch_size`` windows per jitted call.

    A last partial batch is padded with copies of the first window (one compiled shape); the
    padded rows are dropped before summing.
    """
    windows = np.asarray(windows, dtype=np.int32)
    sums = np.zeros(config.num_layers)
    sums_bos = np.zeros(config.num_layers)
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.repeat(windows[:1], batch_size - real, axis=0)])
        cos = np.asarray(token_cosines(config, params, jnp.asarray(batch)), dtype=np.float64)[:, :real]
        sums += cos.sum(axis=(1, 2))
        sums_bos += cos[:, :, 0].sum(axis=1)
        if on_batch is not None:
            on_batch(start + real)
    n, t = windows.shape
    return BlockInfluence(
        bi=1.0 - sums / (n * t),
        bi_without_bos=1.0 - (sums - sums_bos) / (n * (t - 1)),
        tokens=n * t,
    )


jax.tree_util.register_dataclass(BlockInfluence, data_fields=["bi", "bi_without_bos"], meta_fields=["tokens"])
