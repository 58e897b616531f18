"""The contraction profile of a streamed model: every layer's statistics while its block is loaded.

One pass of :func:`~rhojax.models.layerwise.walk_blocks` over the windows computes, at each layer ``t``,
the statistics of :func:`~rhojax.propagation.profile.rho_profile` for every requested
``(eps, samples, linearised)`` and, optionally, the Jacobian gain of
:func:`~rhojax.propagation.jacobian.jacobian_gain` on the first windows. The per-layer steps are the
in-memory ones (same directions, same keys), so the results equal the in-memory path's up to float32
rounding of the clean states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.layerwise import walk_blocks
from rhojax.propagation.jacobian import JacobianGain, gain_from_arrays, layer_gain
from rhojax.propagation.perturbations import sink_mask
from rhojax.propagation.profile import RhoProfile, layer_profile, profile_as_numpy, profile_from_arrays

_layer_profile = jax.jit(layer_profile, static_argnames=("config", "samples", "linearised"))
_layer_gain = jax.jit(layer_gain, static_argnames=("config", "iterations"))


@dataclasses.dataclass(frozen=True)
class ProfileRequest:
    """One profile to compute: relative size ``eps``, ``samples`` directions, with or without the jvp limit."""

    eps: float
    samples: int = 8
    linearised: bool = True


@dataclasses.dataclass(frozen=True)
class GainRequest:
    """The Jacobian gain on the first ``windows`` windows, ``iterations`` power steps, directions from ``key``."""

    windows: int
    key: jax.Array
    iterations: int = 12


def streamed_profiles(
    stream,
    windows: np.ndarray,
    key: jax.Array,
    requests: Sequence[ProfileRequest],
    *,
    gain: GainRequest | None = None,
    sink_positions: tuple[int, ...] = (0,),
    batch: int | None = None,
    on_layer: Callable[[int], None] | None = None,
) -> tuple[list[RhoProfile], JacobianGain | None]:
    """The :class:`RhoProfile` of each request (as :func:`~rhojax.propagation.profile.rho_profile` returns
    it for the clean states of ``windows`` (N, T)) and the gain, from one pass over the blocks of ``stream``.

    ``batch`` windows run per compiled block call when computing the clean states.
    """
    config = stream.config
    sink = sink_mask(np.shape(windows)[-1], sink_positions)
    layers: list[list[dict]] = [[] for _ in requests]
    gains: list[tuple[jax.Array, jax.Array]] = []

    def visit(t: int, p: dict, h_in: jax.Array, h_out: jax.Array) -> None:
        layer = jnp.int32(t)
        for out, r in zip(layers, requests, strict=True):
            out.append(_layer_profile(config, p, h_in, h_out, key, layer, r.eps, sink, samples=r.samples,
                                      linearised=r.linearised))
        if gain is not None:
            gains.append(_layer_gain(config, p, h_in[: gain.windows], h_out[: gain.windows], gain.key, layer,
                                     iterations=gain.iterations))

    walk_blocks(stream, windows, visit, batch=batch, on_layer=on_layer)
    stacked = lambda rows: jax.tree.map(lambda *xs: jnp.stack(xs), *rows)  # noqa: E731
    profiles = [profile_as_numpy(profile_from_arrays(stacked(out), r.eps, sink))
                for out, r in zip(layers, requests, strict=True)]
    return profiles, None if gain is None else gain_from_arrays(*stacked(gains), gain.iterations)
