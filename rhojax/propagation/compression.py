"""Compression-induced perturbations: the error that compressing a block's own weights produces.

For block ``t`` with compressed weights ``B'_t``, the induced error is ``c_t = B'_t(h_t) - h_{t+1}``
(relative size ``eps_t = ||c_t|| / ||h_t||``). Injected at the block's input, it gives
``beta_t = ||B_t(h_t + c_t) - h_{t+1}|| / ||c_t||`` and ``rho_t = beta_t / alpha_t``: the contraction
of the block along the direction real compression produces, at its natural magnitude. Compressing
block ``t`` alone puts exactly ``c_t`` on ``h_{t+1}``, so its downstream drift is the drift of ``c_t``
injected at layer ``t + 1`` (see :mod:`rhojax.propagation.drift`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block, block_params
from rhojax.propagation.drift import drift_tracks
from rhojax.propagation.perturbations import frobenius, sink_mask, token_norms


@dataclasses.dataclass(frozen=True)
class CompressionProfile:
    """Per-layer statistics of the compression-induced perturbation (one deterministic sample)."""

    eps: np.ndarray  # (L,) ||c_t|| / ||h_t||
    output_error: np.ndarray  # (L,) ||c_t|| / ||h_{t+1}||: relative error left on h_{t+1}
    alpha: np.ndarray  # (L,)
    beta: np.ndarray  # (L,)
    rho: np.ndarray  # (L,)
    token_rho_mean: np.ndarray  # (L,) mean over non-sink tokens of the per-token rho
    token_rho_median: np.ndarray  # (L,)
    sink_rho: np.ndarray  # (L,)

    def to_dict(self) -> dict:
        """Every field as plain data (for JSON)."""
        return dataclasses.asdict(self)


@functools.partial(jax.jit, static_argnames="config")
def _compression_arrays(config, blocks, compressed, hidden, sink):
    positions = jnp.arange(hidden.shape[-2], dtype=jnp.int32)

    def per_layer(xs):
        p, pc, h_in, h_out = xs
        c = block(config, pc, h_in, positions) - h_out
        d = block(config, p, h_in + c, positions) - h_out
        alpha = frobenius(h_out) / frobenius(h_in)
        tok_rho = token_norms(d) / token_norms(c) / (token_norms(h_out) / token_norms(h_in))
        kept = jnp.where(sink, jnp.nan, tok_rho)
        return {
            "eps": frobenius(c) / frobenius(h_in),
            "output_error": frobenius(c) / frobenius(h_out),
            "alpha": alpha,
            "beta": frobenius(d) / frobenius(c),
            "token_rho_mean": jnp.nanmean(kept),
            "token_rho_median": jnp.nanmedian(kept),
            "sink_rho": jnp.nanmean(jnp.where(sink, tok_rho, jnp.nan)),
        }

    return jax.lax.map(per_layer, (blocks, compressed, hidden[:-1], hidden[1:]))


def compression_profile(
    config: ModelConfig,
    params: dict,
    compressed_params: dict,
    hidden: jax.Array,
    *,
    sink_positions: tuple[int, ...] = (0,),
) -> CompressionProfile:
    """alpha, beta, rho of every layer for its own compression error ``c_t`` (module docstring)."""
    sink = sink_mask(hidden.shape[-2], sink_positions)
    a = _compression_arrays(config, params["blocks"], compressed_params["blocks"], hidden, sink)
    a = {k: np.asarray(v, dtype=np.float64) for k, v in a.items()}
    return CompressionProfile(rho=a["beta"] / a["alpha"], **a)


def compression_drift(
    config: ModelConfig,
    params: dict,
    compressed_params: dict,
    hidden: jax.Array,
    *,
    sink_positions: tuple[int, ...] = (0,),
    on_layer: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Measured drift ``R_L`` (aggregate, token-wise; each (L,)) of compressing each block alone.

    Compressing block ``t`` alone changes ``h_{t+1}`` by exactly ``c_t``, so the drift is that of ``c_t``
    injected at layer ``t + 1`` and run through the dense suffix (the clean prefix is reused).
    """
    positions = jnp.arange(hidden.shape[-2], dtype=jnp.int32)
    agg, tok = [], []
    for t in range(config.num_layers):
        c = block(config, block_params(compressed_params, t), hidden[t], positions) - hidden[t + 1]
        a, k = drift_tracks(config, params, hidden, t + 1, c[None], sink_positions=sink_positions)
        agg.append(a[0, -1])
        tok.append(k[0, -1])
        if on_layer is not None:
            on_layer(t + 1)
    return np.array(agg), np.array(tok)
