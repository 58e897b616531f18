"""Measured drift: inject an error at the input of block ``l`` and run the real network to the end.

For a perturbed state ``h'_l = h_l + e`` the tracks are ``R_k = ||h'_k - h_k|| / ||h_k||`` for
``k = l .. L`` (aggregate: Frobenius over all tokens; token-wise: mean over non-sink tokens of the
per-token ratio). The measured drift of an injection at ``l`` is ``R_L``. The clean prefix is never
recomputed: the suffix starts from the cached ``h_l`` (one compiled loop with a dynamic start
layer), and the K samples run as one batch.
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
from rhojax.models.transformer import block
from rhojax.propagation.perturbations import (
    directions,
    frobenius,
    scale_aggregate,
    scale_tokenwise,
    sink_mask,
    token_norms,
)

SCALINGS = {"aggregate": scale_aggregate, "tokenwise": scale_tokenwise}


@functools.partial(jax.jit, static_argnames="config")
def _tracks(config, blocks, hidden, layer, e, sink):
    num = hidden.shape[0] - 1
    positions = jnp.arange(hidden.shape[-2], dtype=jnp.int32)

    def relative(h, k):
        clean = hidden[k]
        d = h - clean
        tok = token_norms(d) / token_norms(clean)
        return frobenius(d) / frobenius(clean), jnp.nanmean(jnp.where(sink, jnp.nan, tok), axis=(-2, -1))

    def body(s, carry):
        h, agg, tok = carry
        h = block(config, jax.tree.map(lambda a: a[s], blocks), h, positions)
        r_agg, r_tok = relative(h, s + 1)
        return h, agg.at[:, s + 1].set(r_agg), tok.at[:, s + 1].set(r_tok)

    h = hidden[layer] + e
    r_agg, r_tok = relative(h, layer)
    zeros = jnp.zeros((e.shape[0], num + 1), jnp.float32)
    init = (h, zeros.at[:, layer].set(r_agg), zeros.at[:, layer].set(r_tok))
    _, agg, tok = jax.lax.fori_loop(layer, num, body, init)
    return agg, tok


def relative_drift(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    layer: int | jax.Array,
    e: jax.Array,
    *,
    sink_positions: tuple[int, ...] = (0,),
) -> tuple[jax.Array, jax.Array]:
    """The traceable core of :func:`drift_tracks`: aggregate and token-wise ``R_k`` (K, L + 1) as ``jax.Array``.

    Works under ``jax.jit`` and ``jax.vmap`` (``layer`` may be traced).
    """
    sink = sink_mask(hidden.shape[-2], sink_positions)
    return _tracks(config, params["blocks"], hidden, jnp.asarray(layer, jnp.int32), e, sink)


def drift_tracks(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    layer: int,
    e: jax.Array,
    *,
    sink_positions: tuple[int, ...] = (0,),
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate and token-wise tracks ``R_k`` (K, L + 1) of errors ``e`` (K, N, T, D) added to ``h_layer``.

    Entries before ``layer`` are zero. ``layer = L`` is allowed (the error sits on ``h_L`` itself).
    """
    agg, tok = relative_drift(config, params, hidden, layer, e, sink_positions=sink_positions)
    return np.asarray(agg, np.float64), np.asarray(tok, np.float64)


@dataclasses.dataclass(frozen=True)
class DriftTracks:
    """Gaussian injections at every layer: ``aggregate[l, k, j] = R_j`` of sample k injected at l."""

    eps: float
    scaling: str
    aggregate: np.ndarray  # (L, K, L + 1)
    tokenwise: np.ndarray  # (L, K, L + 1)

    def measured(self, version: str = "aggregate") -> np.ndarray:
        """Measured drift ``R_L`` of an injection at each layer, mean over samples: (L,)."""
        tracks = self.aggregate if version == "aggregate" else self.tokenwise
        return tracks[:, :, -1].mean(axis=1)


def injection_drift(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    key: jax.Array,
    *,
    eps: float,
    samples: int,
    scaling: str = "aggregate",
    sink_positions: tuple[int, ...] = (0,),
    on_layer: Callable[[int], None] | None = None,
) -> DriftTracks:
    """Inject K Gaussian errors of relative size ``eps`` at each layer in turn and track them to ``h_L``.

    Sample k at layer l uses the same direction as :func:`rhojax.propagation.rho_profile` with the
    same key. ``on_layer(layers_done)`` reports progress.
    """
    if scaling not in SCALINGS:
        raise RhojaxError(f"scaling {scaling!r}: choose one of {', '.join(SCALINGS)}")
    num = hidden.shape[0] - 1
    scale = SCALINGS[scaling]
    agg, tok = [], []
    for layer in range(num):
        g = directions(key, layer, samples, hidden.shape[1:])
        a, t = drift_tracks(
            config, params, hidden, layer, scale(g, hidden[layer], eps), sink_positions=sink_positions
        )
        agg.append(a)
        tok.append(t)
        if on_layer is not None:
            on_layer(layer + 1)
    return DriftTracks(float(eps), scaling, np.stack(agg), np.stack(tok))
