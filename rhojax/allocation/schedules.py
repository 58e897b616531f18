"""Layer-wise sparsity schedules at a target mean sparsity ``s``.

Every schedule returns per-layer sparsities ``s_l`` (float64, shape (L,)) whose plain mean is
exactly ``s`` (to float64 rounding) and which lie in the schedule's stated bounds. Every layer of
the supported families holds the same number of prunable weights, so the plain mean is also the
fraction of block weights removed. Recipe: map a per-layer score linearly onto the bounds, then
:func:`~rhojax.allocation.fit.shift_to_mean` (the papers' "renormalise to the target").
"""

from __future__ import annotations

import numpy as np

from rhojax.allocation.fit import bounds_around, linear_to_range, shift_to_mean
from rhojax.propagation.profile import downstream_amplification

#: OWL's defaults for LLaMA (Yin et al. 2024): outlier threshold M = 5, range half-width lambda = 0.08.
OWL_M = 5.0
OWL_LAMBDA = 0.08
#: AlphaPruning's range half-width (Lu et al. 2024 use 0.1-0.3; rhojax does not tune it).
ALPHA_EPS = 0.2
#: Half-width of the depth ramp and of the rho-guided range.
DEPTH_DELTA = 0.08
#: Scale of the absorption correction Delta_l = -(u_l - mean u), |u_l| <= log 3.
ABSORPTION_GAMMA = 0.05


def mapped_schedule(score: np.ndarray, target: float, half_width: float) -> np.ndarray:
    """``score`` (higher: more sparsity) mapped linearly into ``[s - w, s + w]``, shifted to mean ``s``."""
    lo, hi = bounds_around(target, half_width)
    return shift_to_mean(linear_to_range(score, lo, hi), target, lo, hi)


def uniform(num_layers: int, target: float) -> np.ndarray:
    """``s_l = s`` for every layer."""
    return mapped_schedule(np.zeros(num_layers), target, 0.0)


def depth_increasing_sparsity(num_layers: int, target: float, delta: float = DEPTH_DELTA) -> np.ndarray:
    """The depth-decreasing density schedule: sparsity rises linearly from ``s - delta`` at layer 0
    to ``s + delta`` at the last layer."""
    return mapped_schedule(np.arange(num_layers, dtype=np.float64), target, delta)


def owl(outlier_ratios: np.ndarray, target: float, lam: float = OWL_LAMBDA) -> np.ndarray:
    """OWL: layers with more outliers keep more weights; ``-D_l`` mapped into ``[s - lam, s + lam]``."""
    return mapped_schedule(-np.asarray(outlier_ratios, dtype=np.float64), target, lam)


def alpha_pruning(alphas: np.ndarray, target: float, eps: float = ALPHA_EPS) -> np.ndarray:
    """AlphaPruning: heavy-tailed (small Hill alpha, well-trained) layers keep more weights; ``alpha_l``
    mapped into ``[s - eps, s + eps]``."""
    return mapped_schedule(np.asarray(alphas, dtype=np.float64), target, eps)


def output_amplification(rho: np.ndarray) -> np.ndarray:
    """``A_{l+1} = prod_{t > l} rho_t``: the downstream gain met by an error that block ``l`` writes into its
    output (``A_L = 1`` for the last block)."""
    return np.append(downstream_amplification(rho)[1:], 1.0)


def rho_guided(rho: np.ndarray, target: float, delta: float = DEPTH_DELTA) -> np.ndarray:
    """rho-guided: layers whose output error is amplified most downstream keep more weights;
    ``-log A_{l+1}`` mapped into ``[s - delta, s + delta]``."""
    return mapped_schedule(-np.log(output_amplification(rho)), target, delta)


def absorption_correction(u: np.ndarray) -> np.ndarray:
    """``Delta_l = -(u_l - mean(u))``: absorbing layers (u below the mean) take more sparsity."""
    u = np.asarray(u, dtype=np.float64)
    return -(u - u.mean())


def absorption_corrected(
    base: np.ndarray, u: np.ndarray, target: float, half_width: float, gamma: float = ABSORPTION_GAMMA
) -> np.ndarray:
    """``shift_to_mean(base + gamma * Delta, s)`` inside ``[s - half_width - 2 gamma log 3, s + ...]``.

    ``base`` is an OWL or AlphaPruning schedule built with range ``half_width``; since
    ``|Delta_l| <= 2 log 3`` the widened bounds never clip the correction itself.
    """
    lo, hi = bounds_around(target, half_width + 2 * gamma * np.log(3.0))
    corrected = np.asarray(base, dtype=np.float64) + gamma * absorption_correction(u)
    return shift_to_mean(corrected, target, lo, hi)
