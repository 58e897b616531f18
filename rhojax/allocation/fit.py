"""Two primitives every schedule is built from: a linear map of scores onto a range, and an exact
shift to a target mean inside bounds."""

from __future__ import annotations

import numpy as np

from rhojax.errors import RhojaxError


def linear_to_range(score: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``lo + (score - min) / (max - min) * (hi - lo)``; all get the midpoint if the scores are equal."""
    score = np.asarray(score, dtype=np.float64)
    span = score.max() - score.min()
    if span == 0:
        return np.full(score.shape, (lo + hi) / 2)
    return lo + (score - score.min()) / span * (hi - lo)


def shift_to_mean(x: np.ndarray, target: float, lo: float, hi: float) -> np.ndarray:
    """``clip(x + c, lo, hi)`` with the constant ``c`` that makes the mean exactly ``target``.

    ``f(c) = mean(clip(x + c, lo, hi))`` is continuous, piecewise linear and non-decreasing, with
    breakpoints at ``lo - x_i`` and ``hi - x_i``; ``c`` is solved in closed form on the segment
    where ``f`` crosses ``target`` (no iteration), so the mean is exact to float64 rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    if not lo <= target <= hi:
        raise RhojaxError(f"target sparsity {target} lies outside the bounds [{lo}, {hi}]")
    if lo == hi:
        return np.full(x.shape, float(target))
    breaks = np.sort(np.concatenate([lo - x, hi - x]))
    values = np.clip(x[None, :] + breaks[:, None], lo, hi).mean(axis=1)
    k = int(np.searchsorted(values, target, side="left"))
    if k == 0 or k == len(breaks) or values[k] == target:  # target at a breakpoint (or at a bound up to rounding)
        c = breaks[min(k, len(breaks) - 1)]
    else:  # target lies strictly between values[k-1] and values[k]: solve the linear piece
        mid = (breaks[k - 1] + breaks[k]) / 2
        free = (x + mid > lo) & (x + mid < hi)
        fixed = np.clip(x + mid, lo, hi)[~free].sum()
        c = (target * len(x) - fixed - x[free].sum()) / free.sum()
    return np.clip(x + c, lo, hi)


def bounds_around(target: float, half_width: float) -> tuple[float, float]:
    """``[target - half_width, target + half_width]`` intersected with ``[0, 1]``."""
    if not 0.0 <= target < 1.0:
        raise RhojaxError(f"target {target}: choose a target mean sparsity in [0, 1)")
    if half_width < 0:
        raise RhojaxError(f"range half-width {half_width} must be non-negative")
    return max(0.0, target - half_width), min(1.0, target + half_width)
