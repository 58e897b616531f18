"""Hypothesis strategies shared by the property tests: shapes, scales, seeds."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

dims = st.integers(min_value=1, max_value=10)
scales = st.floats(min_value=1e-3, max_value=1e3)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
op_norms = st.sampled_from(["fro", "spectral"])
sparsities = st.floats(min_value=0.0, max_value=1.0)
bit_widths = st.integers(min_value=2, max_value=8)


def gaussian(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Float64 Gaussian entries times ``scale``, with a heavy-tailed column to mimic outliers."""
    a = rng.standard_normal(shape) * scale
    if a.ndim == 2 and rng.random() < 0.5:
        a[:, rng.integers(a.shape[1])] *= 30
    return a


def random_mask(rng: np.random.Generator, shape: tuple[int, ...], sparsity: float) -> np.ndarray:
    """True where an entry is kept; ``round(sparsity * size)`` entries dropped at random."""
    drop = rng.permutation(int(np.prod(shape)))[: round(sparsity * int(np.prod(shape)))]
    keep = np.ones(int(np.prod(shape)), dtype=bool)
    keep[drop] = False
    return keep.reshape(shape)


def round_to_grid(w: np.ndarray, bits: int) -> np.ndarray:
    """Symmetric per-column round-to-nearest at ``bits`` bits (the property tests' own reference)."""
    step = np.abs(w).max(axis=0, keepdims=True) / (2 ** (bits - 1) - 1)
    safe = np.where(step > 0, step, 1.0)
    return np.where(step > 0, np.round(w / safe) * safe, 0.0)
