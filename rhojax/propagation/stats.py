"""Small summaries shared by the propagation results: confidence intervals and token quantiles."""

from __future__ import annotations

import numpy as np

#: Quantiles kept for per-token distributions.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def mean_ci(samples: np.ndarray, axis: int = -1, z: float = 1.96) -> tuple[np.ndarray, ...]:
    """Mean and normal-approximation 95% interval ``mean -+ z * sd / sqrt(K)`` over ``axis``.

    With a single sample the interval collapses to the mean.
    """
    samples = np.asarray(samples, dtype=np.float64)
    k = samples.shape[axis]
    mean = samples.mean(axis=axis)
    half = z * samples.std(axis=axis, ddof=1) / np.sqrt(k) if k > 1 else np.zeros_like(mean)
    return mean, mean - half, mean + half


def per_sample_summary(name: str, samples: np.ndarray) -> dict:
    """``{name: mean, name_ci: [lo, hi], name_samples: samples}`` for ``(L, K)`` per-layer samples."""
    mean, lo, hi = mean_ci(samples)
    return {name: mean, f"{name}_ci": np.stack([lo, hi], axis=-1), f"{name}_samples": samples}


def token_quantiles(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``(L, len(QUANTILES))`` quantiles of per-token ``values`` (L, N, T) over positions ``keep`` (T,)."""
    flat = np.asarray(values)[:, :, np.asarray(keep)].reshape(len(values), -1)
    return np.quantile(flat, QUANTILES, axis=1).T
