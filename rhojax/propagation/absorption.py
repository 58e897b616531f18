"""Perturbation absorption (inter-layer perturbation-absorption paper; docs/definitions.md#absorption).

Inject Gaussian noise of relative size ``eps`` at layer ``l`` and track ``R_k`` to the output
(:mod:`rhojax.propagation.drift`). Absorption coefficient ``r_l = E[R_L / R_l]`` (r < 1 absorbs,
r > 1 amplifies) and its clipped log ``u_l = clip(log r_l, -log 3, log 3)``, which allocation
corrections use as ``Delta_l = -(u_l - mean(u))``. Sweeping ``eps`` shows amplification at small
perturbations turning into absorption at pruning-scale ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.propagation.drift import DriftTracks, injection_drifts

U_CLIP = math.log(3.0)


def clipped_log(r: np.ndarray) -> np.ndarray:
    """``u = clip(log r, -log 3, log 3)``."""
    return np.clip(np.log(r), -U_CLIP, U_CLIP)


def absorption_coefficients(tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``r_l = mean_k R_L / R_l`` and ``u_l = clip(log r_l, -log 3, log 3)`` from tracks (L, K, L + 1)."""
    layers = np.arange(tracks.shape[0])
    start = tracks[layers, :, layers]  # (L, K): R_l of the injection at l
    r = (tracks[:, :, -1] / start).mean(axis=1)
    return r, clipped_log(r)


@dataclasses.dataclass(frozen=True)
class Absorption:
    """Absorption tracks and coefficients per ``eps`` (E values), L layers, K samples."""

    eps: np.ndarray  # (E,)
    tracks: np.ndarray  # (E, L, K, L + 1) aggregate R_k (whatever the injection's scaling)
    token_tracks: np.ndarray  # (E, L, K, L + 1) token-wise R_k
    r: np.ndarray  # (E, L)
    u: np.ndarray  # (E, L)
    token_r: np.ndarray  # (E, L) r_l from the token-wise tracks
    scaling: str

    @property
    def absorbing_fraction(self) -> np.ndarray:
        """Fraction of layers with ``r_l < 1`` at each eps: (E,)."""
        return (self.r < 1).mean(axis=1)

    def to_dict(self) -> dict:
        """Plain data for JSON: coefficients, absorbing fraction and the sample-mean tracks."""
        return {
            "eps": self.eps,
            "scaling": self.scaling,
            "r": self.r,
            "u": self.u,
            "token_r": self.token_r,
            "absorbing_fraction": self.absorbing_fraction,
            "mean_log_r": np.log(self.r).mean(axis=1),
            "tracks_mean": self.tracks.mean(axis=2),
            "token_tracks_mean": self.token_tracks.mean(axis=2),
        }


def absorption_from_drift(runs: Sequence[DriftTracks]) -> Absorption:
    """Assemble :class:`Absorption` from injection runs at several eps (same scaling).

    ``r``/``u`` come from the tracks that match the injection's scaling (aggregate tracks for
    aggregate injections, token-wise tracks for token-wise ones); ``token_r`` always from token-wise tracks.
    """
    def main(d: DriftTracks) -> np.ndarray:
        return d.aggregate if d.scaling == "aggregate" else d.tokenwise

    r, u = zip(*(absorption_coefficients(main(d)) for d in runs), strict=True)
    token_r = [absorption_coefficients(d.tokenwise)[0] for d in runs]
    return Absorption(
        eps=np.array([d.eps for d in runs]),
        tracks=np.stack([d.aggregate for d in runs]),
        token_tracks=np.stack([d.tokenwise for d in runs]),
        r=np.stack(r),
        u=np.stack(u),
        token_r=np.stack(token_r),
        scaling=runs[0].scaling,
    )


def absorption(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    key: jax.Array,
    *,
    eps_values: Sequence[float],
    samples: int,
    scaling: str = "aggregate",
    on_layer: Callable[[int], None] | None = None,
) -> Absorption:
    """Tracks ``R_k``, ``r_l`` and ``u_l`` for every layer at every ``eps`` (module docstring).

    Every eps runs in one batch per layer (:func:`~rhojax.propagation.drift.injection_drifts`);
    ``on_layer(n)`` receives the number of layers done.
    """
    return absorption_from_drift(injection_drifts(config, params, hidden, key, eps_values=eps_values,
                                                  samples=samples, scalings=(scaling,), on_layer=on_layer)[scaling])
