"""Hypothesis twins of lean/RhojaxBounds/Compression.lean: one test per theorem, float64."""

from __future__ import annotations

import numpy as np
from bound_strategies import bit_widths, dims, gaussian, norm, random_mask, rtn_reference, scales, seeds, sparsities
from hypothesis import given
from hypothesis import strategies as st

from rhojax.bounds import twins


def _smallest_magnitude_pruned(w: np.ndarray, sparsity: float) -> np.ndarray:
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    keep = np.ones(w.size, dtype=bool)
    keep[order[: round(sparsity * w.size)]] = False
    return np.where(keep.reshape(w.shape), w, 0.0)


groups = st.sampled_from([None, 1, 2, 4])


@given(dims, dims, scales, sparsities, st.booleans(), st.booleans(), seeds)
def test_magnitude_pruning_frobenius(assert_bound, d_in, d_out, sw, sparsity, by_magnitude, integer_ties, seed):
    rng = np.random.default_rng(seed)
    w = gaussian(rng, (d_in, d_out), sw)
    if integer_ties:
        w = np.round(w / sw * 2)  # many equal magnitudes
    pruned = _smallest_magnitude_pruned(w, sparsity) if by_magnitude else w * random_mask(rng, w.shape, sparsity)
    assert_bound("magnitude_pruning_frobenius", twins.magnitude_pruning_frobenius(w, pruned), norm(w - pruned))


@given(st.integers(1, 4), dims, scales, bit_widths, groups, seeds)
def test_rtn_rounding_bound(assert_bound, group_count, d_out, sw, bits, group, seed):
    rng = np.random.default_rng(seed)
    w = gaussian(rng, (group_count * (group or 4), d_out), sw)
    step, quantized = rtn_reference(w, bits, group)
    err = np.abs(w - quantized)
    actual = float(np.max(np.where(step > 0, err / np.where(step > 0, step / 2, 1.0), np.where(err > 0, np.inf, 0.0))))
    assert_bound("rtn_rounding_bound", twins.rtn_rounding_bound(w, quantized, bits, group), actual)


@given(st.integers(1, 4), dims, scales, bit_widths, groups, sparsities, seeds)
def test_rtn_frobenius_bound(assert_bound, group_count, d_out, sw, bits, group, sparsity, seed):
    rng = np.random.default_rng(seed)
    w = gaussian(rng, (group_count * (group or 4), d_out), sw) * random_mask(rng, (group_count * (group or 4), d_out),
                                                                           sparsity)
    quantized = rtn_reference(w, bits, group)[1]
    assert_bound("rtn_frobenius_bound", twins.rtn_frobenius_bound(w, quantized, bits, group), norm(w - quantized))
