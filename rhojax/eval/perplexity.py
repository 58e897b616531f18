"""Perplexity over fixed token windows, jit-compiled and batched.

``ppl = exp( sum_windows sum_{i=1}^{T-1} -log p(x_i | x_<i) / (N (T - 1)) )``: every text token of
each ``[BOS] + chunk`` window is scored (see :mod:`rhojax.data.windows`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from rhojax.errors import NumericalError
from rhojax.models.config import ModelConfig
from rhojax.models.faults import locate_nonfinite
from rhojax.models.layerwise import walk_blocks
from rhojax.models.transformer import forward, unembed
from rhojax.sharding import gather, pad_rows, padded_size, shard_rows


@dataclasses.dataclass(frozen=True)
class PerplexityResult:
    """Perplexity ``exp(mean_nll)`` over ``windows`` windows of ``seq_len`` tokens (``scored_tokens`` scored)."""

    perplexity: float
    mean_nll: float
    scored_tokens: int
    windows: int
    seq_len: int

    def to_dict(self) -> dict:
        """Every field as plain data (for JSON)."""
        return dataclasses.asdict(self)


def token_nll(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    """Per-position negative log-likelihood of ``tokens[..., 1:]`` under ``logits[..., :-1, :]``."""
    logp = jax.nn.log_softmax(logits[..., :-1, :].astype(jnp.float32), axis=-1)
    return -jnp.take_along_axis(logp, tokens[..., 1:, None], axis=-1)[..., 0]


@functools.partial(jax.jit, static_argnames="config")
def window_nll(config: ModelConfig, params: dict, tokens: jax.Array) -> jax.Array:
    """Summed NLL of each window: shape ``tokens.shape[:-1]``."""
    return token_nll(forward(config, params, tokens), tokens).sum(-1)


@functools.partial(jax.jit, static_argnames="config")
def final_state_nll(config: ModelConfig, params: dict, h_last: jax.Array, tokens: jax.Array) -> jax.Array:
    """Summed NLL of each window from the last block's output ``h_L`` (skips the block stack)."""
    return token_nll(unembed(config, params, h_last), tokens).sum(-1)


def perplexity_from_nll(nll_sums: np.ndarray, seq_len: int) -> PerplexityResult:
    """The :class:`PerplexityResult` of per-window summed NLLs (N,) of windows of ``seq_len`` tokens."""
    nll_sums = np.asarray(nll_sums, dtype=np.float64)
    scored = nll_sums.size * (seq_len - 1)
    mean = float(nll_sums.sum() / scored)
    return PerplexityResult(math.exp(mean), mean, scored, int(nll_sums.size), seq_len)


def window_nll_sums(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    *,
    batch_size: int = 4,
    on_batch: Callable[[int], None] | None = None,
    mesh: Mesh | None = None,
) -> np.ndarray:
    """Summed NLL of each of ``(N, T)`` windows, (N,) float64, ``batch_size`` windows per jitted call.

    The last partial batch is padded with copies of the first window so only one shape compiles;
    padded rows are dropped. ``on_batch(n_windows_done)`` reports progress. With a ``mesh``
    (:mod:`rhojax.sharding`) each batch, rounded up to a multiple of the data axis, is split over it.
    """
    windows = np.asarray(windows, dtype=np.int32)
    n = len(windows)
    batch_size = padded_size(batch_size, mesh)
    sums = []
    for start in range(0, n, batch_size):
        batch = windows[start : start + batch_size]
        real = len(batch)
        tokens = shard_rows(pad_rows(batch, batch_size), mesh)
        sums.append(np.asarray(gather(window_nll(config, params, tokens), mesh), np.float64)[:real])
        if on_batch is not None:
            on_batch(start + real)
    return np.concatenate(sums)


def streamed_window_nll_sums(
    stream,
    windows: np.ndarray,
    *,
    batch_size: int = 4,
    on_layer: Callable[[int], None] | None = None,
) -> np.ndarray:
    """:func:`window_nll_sums` of a streamed model (:class:`~rhojax.io.stream.BlockStream`): the blocks run one
    at a time over the cached states of all windows (:func:`~rhojax.models.layerwise.walk_blocks`), then the
    resident head scores ``batch_size`` windows per call. ``on_layer(t + 1)`` reports progress."""
    windows = np.asarray(windows, dtype=np.int32)
    h_last = walk_blocks(stream, windows, batch=batch_size, on_layer=on_layer)
    return final_state_nll_sums(stream.config, stream.top, h_last, windows, batch_size=batch_size)


def final_state_nll_sums(config: ModelConfig, params: dict, h_last: jax.Array, windows: np.ndarray, *,
                         batch_size: int = 4) -> np.ndarray:
    """Summed NLL of each window (N,) float64 from the last block's outputs ``h_last`` (N, T, D) of
    ``windows`` (N, T), ``batch_size`` windows per call (``params`` needs only the head and final norm)."""
    return np.concatenate([
        np.asarray(final_state_nll(config, params, h_last[i : i + batch_size],
                                   jnp.asarray(windows[i : i + batch_size])), np.float64)
        for i in range(0, len(windows), batch_size)
    ])


def perplexity(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    *,
    batch_size: int = 4,
    on_batch: Callable[[int], None] | None = None,
    mesh: Mesh | None = None,
) -> PerplexityResult:
    """Perplexity of ``(N, T)`` windows (see :func:`window_nll_sums` for batching and progress).

    A window whose loss is NaN/Inf raises :class:`NumericalError` naming the layer and stage where
    the first NaN/Inf arose (:func:`rhojax.models.locate_nonfinite`); nothing is averaged over it.
    """
    windows = np.asarray(windows, dtype=np.int32)
    nll = window_nll_sums(config, params, windows, batch_size=batch_size, on_batch=on_batch, mesh=mesh)
    bad = np.flatnonzero(~np.isfinite(nll))
    if bad.size:
        fault = locate_nonfinite(config, params, windows[bad[:1]])
        where = fault.describe() if fault is not None else "not reproduced on that window alone"
        raise NumericalError(
            f"perplexity: {bad.size} of {len(windows)} windows have a non-finite loss (window {bad[0]}: {where})"
        )
    return perplexity_from_nll(nll, windows.shape[1])
