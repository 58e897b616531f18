"""Agreement between predicted and measured drift: Spearman and Pearson with bootstrap intervals.

Pearson is taken on ``log10`` values (drifts span orders of magnitude). Intervals are percentile
bootstrap intervals over layers resampled with replacement, from an explicit seed.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def _pearson_log(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(np.log10(x), np.log10(y))[0, 1])


def correlation(predicted: np.ndarray, measured: np.ndarray, *, seed: int, boots: int = 2000) -> dict:
    """Spearman and log-Pearson correlation of two positive per-layer arrays, with 95% bootstrap CIs."""
    x = np.asarray(predicted, np.float64)
    y = np.asarray(measured, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(boots, len(x)))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = np.array([_spearman(x[i], y[i]) for i in idx])
        pe = np.array([_pearson_log(x[i], y[i]) for i in idx])
    sp, pe = sp[np.isfinite(sp)], pe[np.isfinite(pe)]
    return {
        "n": len(x),
        "spearman": _spearman(x, y),
        "spearman_p": float(stats.spearmanr(x, y).pvalue),
        "spearman_ci": np.quantile(sp, [0.025, 0.975]),
        "pearson_log10": _pearson_log(x, y),
        "pearson_log10_p": float(stats.pearsonr(np.log10(x), np.log10(y)).pvalue),
        "pearson_log10_ci": np.quantile(pe, [0.025, 0.975]),
        "bootstrap": boots,
        "seed": seed,
    }
