"""Bootstrap intervals over evaluation windows for perplexities and perplexity ratios.

Windows are the unit of resampling (tokens inside a window are dependent). For a ratio of two models
evaluated on the same windows the resampling is paired: one set of window indices serves both.
Percentile intervals at 95%, from an explicit seed.
"""

from __future__ import annotations

import numpy as np


def _resampled_means(nll: np.ndarray, tokens_per_window: int, idx: np.ndarray) -> np.ndarray:
    return np.asarray(nll, np.float64)[..., idx].sum(-1) / (idx.shape[-1] * tokens_per_window)


def bootstrap_indices(num_windows: int, boots: int, seed: int) -> np.ndarray:
    """``(boots, num_windows)`` window indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, num_windows, size=(boots, num_windows))


def perplexity_ci(window_nll: np.ndarray, tokens_per_window: int, *, boots: int = 1000,
                  seed: int = 0) -> tuple[float, float]:
    """95% interval of ``exp(sum nll / scored)`` over windows resampled with replacement."""
    nll = np.asarray(window_nll, np.float64)
    idx = bootstrap_indices(len(nll), boots, seed)
    lo, hi = np.quantile(np.exp(_resampled_means(nll, tokens_per_window, idx)), [0.025, 0.975])
    return float(lo), float(hi)


def ratio_ci(window_nll: np.ndarray, reference_nll: np.ndarray, tokens_per_window: int, *, boots: int = 1000,
             seed: int = 0) -> tuple[float, float]:
    """95% paired-bootstrap interval of ``ppl(window_nll) / ppl(reference_nll)`` (same windows, same order).

    ``window_nll`` may carry leading axes (several models at once): the result then has those axes too.
    """
    a, b = np.asarray(window_nll, np.float64), np.asarray(reference_nll, np.float64)
    idx = bootstrap_indices(b.shape[-1], boots, seed)
    ratios = np.exp(_resampled_means(a, tokens_per_window, idx)
                    - _resampled_means(b, tokens_per_window, idx))
    lo, hi = np.quantile(ratios, [0.025, 0.975], axis=-1)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)
