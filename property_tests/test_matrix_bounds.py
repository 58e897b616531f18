"""Hypothesis twins of lean/RhojaxBounds/Matrix.lean: one test per theorem, float64."""

from __future__ import annotations

import numpy as np
from bound_strategies import (
    bit_widths,
    dims,
    gaussian,
    norm,
    op_norms,
    random_mask,
    round_to_grid,
    scales,
    seeds,
    sparsities,
)
from hypothesis import given
from hypothesis import strategies as st

from rhojax.bounds import twins
from rhojax.bounds.activations import ACTIVATIONS


def _compressed(rng: np.random.Generator, w: np.ndarray, sparsity: float, bits: int) -> np.ndarray:
    """A compressed copy of ``w``: random pruning, grid rounding, or a small dense perturbation."""
    choice = rng.integers(3)
    if choice == 0:
        return w * random_mask(rng, w.shape, sparsity)
    if choice == 1:
        return round_to_grid(w, bits)
    return w + gaussian(rng, w.shape, float(np.abs(w).max() + 1) * rng.uniform(1e-6, 1.0))


@given(dims, dims, dims, scales, scales, sparsities, bit_widths, op_norms, seeds)
def test_weight_perturbation(assert_bound, n, d_in, d_out, sw, sx, sparsity, bits, op, seed):
    rng = np.random.default_rng(seed)
    w, x = gaussian(rng, (d_in, d_out), sw), gaussian(rng, (n, d_in), sx)
    w2 = _compressed(rng, w, sparsity, bits)
    assert_bound("weight_perturbation", twins.weight_perturbation(w, w2, x, op), norm(x @ w2 - x @ w))


@given(dims, dims, dims, scales, scales, sparsities, bit_widths, op_norms, seeds)
def test_relative_weight_perturbation(assert_bound, n, d_in, d_out, sw, sx, sparsity, bits, op, seed):
    rng = np.random.default_rng(seed)
    w, x = gaussian(rng, (d_in, d_out), sw), gaussian(rng, (n, d_in), sx)
    w2 = _compressed(rng, w, sparsity, bits)
    check = twins.relative_weight_perturbation(w, w2, x, op)
    assert_bound("relative_weight_perturbation", check, norm(x @ w2 - x @ w))


@given(dims, dims, dims, scales, scales, st.floats(1e-6, 1.0), sparsities, bit_widths, op_norms, seeds)
def test_weight_input_error(assert_bound, n, d_in, d_out, sw, sx, rel_input, sparsity, bits, op, seed):
    rng = np.random.default_rng(seed)
    w, x = gaussian(rng, (d_in, d_out), sw), gaussian(rng, (n, d_in), sx)
    x2 = x + gaussian(rng, x.shape, sx * rel_input)
    w2 = _compressed(rng, w, sparsity, bits)
    assert_bound("weight_input_error", twins.weight_input_error(w, w2, x, x2, op), norm(x2 @ w2 - x @ w))


@given(dims, dims, dims, scales, scales, sparsities, bit_widths, op_norms, seeds)
def test_additive_composition(assert_bound, n, d_in, d_out, sw, sx, sparsity, bits, op, seed):
    rng = np.random.default_rng(seed)
    w, x = gaussian(rng, (d_in, d_out), sw), gaussian(rng, (n, d_in), sx)
    pruned = w * random_mask(rng, w.shape, sparsity)
    w2 = round_to_grid(pruned, bits)
    assert_bound("additive_composition", twins.additive_composition(w, pruned, w2, x, op), norm(x @ w2 - x @ w))


@given(dims, dims, dims, dims, scales, scales, scales, sparsities, bit_widths, op_norms, seeds)
def test_two_matrix_chain(assert_bound, n, d_in, d_mid, d_out, sa, sb, sx, sparsity, bits, op, seed):
    rng = np.random.default_rng(seed)
    a, b = gaussian(rng, (d_in, d_mid), sa), gaussian(rng, (d_mid, d_out), sb)
    x = gaussian(rng, (n, d_in), sx)
    a2, b2 = _compressed(rng, a, sparsity, bits), _compressed(rng, b, sparsity, bits)
    check = twins.two_matrix_chain(a, a2, b, b2, x, op)
    assert_bound("two_matrix_chain", check, norm((x @ a2) @ b2 - (x @ a) @ b))


@given(dims, dims, dims, dims, scales, scales, scales, sparsities, bit_widths, op_norms,
       st.sampled_from(sorted(ACTIVATIONS)), seeds)
def test_lipschitz_activation_chain(
    assert_bound, n, d_in, d_mid, d_out, sa, sb, sx, sparsity, bits, op, activation, seed
):
    rng = np.random.default_rng(seed)
    a, b = gaussian(rng, (d_in, d_mid), sa), gaussian(rng, (d_mid, d_out), sb)
    x = gaussian(rng, (n, d_in), sx)
    fn, lipschitz = ACTIVATIONS[activation]
    a2, b2 = _compressed(rng, a, sparsity, bits), _compressed(rng, b, sparsity, bits)
    check = twins.lipschitz_activation_chain(a, a2, b, b2, x, fn, lipschitz, op)
    assert_bound("lipschitz_activation_chain", check, norm(fn(x @ a2) @ b2 - fn(x @ a) @ b))


@given(dims, dims, scales, scales, st.floats(1e-6, 10.0), st.booleans(), op_norms, seeds)
def test_residual_block(assert_bound, n, d, sw, sx, rel_input, nonlinear, op, seed):
    rng = np.random.default_rng(seed)
    w, u = gaussian(rng, (d, d), sw), gaussian(rng, (n, d), sx)
    v = u + gaussian(rng, u.shape, sx * rel_input)
    branch, lipschitz = twins.linear_branch(w, op)
    if nonlinear:  # tanh is 1-Lipschitz, so tanh(X W) is ||W||-Lipschitz
        branch = lambda x: np.tanh(x @ w)  # noqa: E731
    actual = norm((u + branch(u)) - (v + branch(v)))
    assert_bound("residual_block", twins.residual_block(branch, lipschitz, u, v), actual)
