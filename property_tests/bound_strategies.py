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
    return rtn_reference(w, bits)[1]


def norm(a: np.ndarray) -> float:
    """Frobenius norm as a plain sum of squares (the tests' own, not the twins')."""
    return float(np.sqrt(np.sum(np.square(a))))


def rtn_reference(w: np.ndarray, bits: int, group: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric RTN per group of ``group`` consecutive inputs (or per output column), float64: the step
    ``s = max|w| / (2^(b-1) - 1)`` of each entry's group, and ``s * clip(round(w / s))`` (``np.round``
    rounds half to even, like ``jnp.round``)."""
    fan_in, fan_out = w.shape
    size = fan_in if group is None else group
    qmax = 2 ** (bits - 1) - 1
    step = np.repeat(np.abs(w).reshape(fan_in // size, size, fan_out).max(axis=1) / qmax, size, axis=0)
    safe = np.where(step > 0, step, 1.0)
    return step, np.where(step > 0, np.clip(np.round(w / safe), -qmax, qmax) * safe, 0.0)
