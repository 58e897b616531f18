"""Measured drift: inject an error at the input of block ``l`` and run the real network to the end.

For a perturbed state ``h'_l = h_l + e`` the tracks are ``R_k = ||h'_k - h_k|| / ||h_k||`` for
``k = l .. L`` (aggregate: Frobenius over all tokens; token-wise: mean over non-sink tokens of the
per-token ratio). The measured drift of an injection at ``l`` is ``R_L``. The clean prefix is never
recomputed: the suffix starts from the cached ``h_l`` (one compiled loop with a dynamic start
layer). :func:`injection_drifts` runs every sample, every ``eps`` and every scaling of one layer as
one batch through that loop, so a whole absorption sweep is one compiled program called once per layer.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

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


@functools.partial(jax.jit, static_argnames=("config", "samples", "scalings"))
def _layer_drifts(config, blocks, hidden, layer, key, eps, sink, *, samples, scalings):
    """Tracks (S, E, K, L + 1) of every scaling S, eps E and sample K injected at the (traced) ``layer``."""
    g = directions(key, layer, samples, hidden.shape[1:])
    h = hidden[layer]
    e = jnp.stack([jax.vmap(lambda x, s=s: SCALINGS[s](g, h, x))(eps) for s in scalings])  # (S, E, K, N, T, D)
    agg, tok = _tracks(config, blocks, hidden, layer, e.reshape(-1, *e.shape[3:]), sink)
    shape = (len(scalings), eps.shape[0], samples, hidden.shape[0])
    return agg.reshape(shape), tok.reshape(shape)


def injection_drifts(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    key: jax.Array,
    *,
    eps_values: Sequence[float],
    samples: int,
    scalings: Sequence[str] = ("aggregate",),
    sink_positions: tuple[int, ...] = (0,),
    on_layer: Callable[[int], None] | None = None,
) -> dict[str, list[DriftTracks]]:
    """:func:`injection_drift` at every ``eps`` in ``eps_values`` and every scaling in ``scalings`` at once.

    Returns ``{scaling: [DriftTracks per eps, in the order given]}``, equal to calling
    :func:`injection_drift` for each pair. The S x E x K perturbed copies of layer ``l`` run as one
    batch through one compiled suffix loop (dynamic start layer), called once per layer; the clean
    prefix is the cached ``hidden``. ``on_layer(layers_done)`` reports progress.
    """
    scalings = tuple(scalings)
    for scaling in scalings:
        if scaling not in SCALINGS:
            raise RhojaxError(f"scaling {scaling!r}: choose one of {', '.join(SCALINGS)}")
    if not scalings or not len(eps_values):
        raise RhojaxError("eps_values and scalings: give at least one of each")
    num = hidden.shape[0] - 1
    sink = sink_mask(hidden.shape[-2], sink_positions)
    eps = jnp.asarray(eps_values, jnp.float32)
    agg, tok = [], []
    for layer in range(num):
        a, t = _layer_drifts(config, params["blocks"], hidden, jnp.asarray(layer, jnp.int32), key, eps, sink,
                             samples=samples, scalings=scalings)
        agg.append(np.asarray(a, np.float64))
        tok.append(np.asarray(t, np.float64))
        if on_layer is not None:
            on_layer(layer + 1)
    agg, tok = np.stack(agg, axis=2), np.stack(tok, axis=2)  # (S, E, L, K, L + 1)
    return {scaling: [DriftTracks(float(e), scaling, agg[i, j], tok[i, j]) for j, e in enumerate(eps_values)]
            for i, scaling in enumerate(scalings)}


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
    same key. ``on_layer(layers_done)`` reports progress. Several eps or scalings at once:
    :func:`injection_drifts`.
    """
    return injection_drifts(config, params, hidden, key, eps_values=(eps,), samples=samples, scalings=(scaling,),
                            sink_positions=sink_positions, on_layer=on_layer)[scaling][0]
