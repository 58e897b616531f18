"""Closed-form cases of the numeric twins and the activations' Lipschitz constants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.bounds import twins
from rhojax.bounds.activations import ACTIVATIONS


def _unit(shape, i, j, value=1.0):
    a = np.zeros(shape)
    a[i, j] = value
    return a


@pytest.mark.parametrize("op", ["fro", "spectral"])
def test_weight_perturbation_is_tight_for_a_rank_one_error(op):
    """``W' - W = c e_i e_j^T`` and ``x = e_i``: both sides equal ``|c|``."""
    w = np.arange(12.0).reshape(3, 4)
    check = twins.weight_perturbation(w, w + _unit((3, 4), 1, 2, -2.5), _unit((1, 3), 0, 1), op)
    assert check.actual == pytest.approx(2.5) and check.bound == pytest.approx(2.5)
    assert check.holds() and check.tightness == pytest.approx(1.0)


def test_a_false_inequality_does_not_hold():
    assert not twins.BoundCheck(bound=1.0, actual=1.0 + 1e-6, scale=1.0).holds()
    assert twins.BoundCheck(bound=1.0, actual=1.0 + 1e-13, scale=1.0).holds()  # round-off only


def test_additive_composition_equals_sum_for_aligned_stages():
    """Two stages moving the same entry the same way: the bound is attained."""
    w, x = np.eye(3), _unit((1, 3), 0, 0)
    w1 = w + _unit((3, 3), 0, 1, 0.5)
    w2 = w1 + _unit((3, 3), 0, 1, 0.25)
    check = twins.additive_composition(w, w1, w2, x)
    assert check.actual == pytest.approx(0.75) and check.bound == pytest.approx(0.75)


def test_product_propagation_closed_form():
    """Scaled identities: ``||e_T|| = prod(c_t) ||e_0||`` exactly."""
    scales = [0.5, 3.0, 2.0]
    e0 = np.ones((2, 4))
    check = twins.product_propagation(e0, [c * np.eye(4) for c in scales], "spectral")
    assert check.actual == pytest.approx(3.0 * np.sqrt(8)) and check.bound == pytest.approx(3.0 * np.sqrt(8))


def test_geometric_series_closed_form():
    """``e_{t+1} = rho e_t + d`` with ``e_0 = 0``: ``||e_T|| = delta (1 - rho^T) / (1 - rho) < delta / (1 - rho)``."""
    rho, d = 0.5, np.full((1, 1), 2.0)
    check = twins.geometric_series_bound(np.zeros((1, 1)), [rho * np.eye(1)] * 6, [d] * 6, "spectral")
    assert check.actual == pytest.approx(2.0 * (1 - rho**6) / (1 - rho))
    assert check.bound == pytest.approx(4.0)


def test_lyapunov_closed_form_and_applicability():
    h0 = np.ones((1, 2))
    e0 = np.array([[1.0, 0.0]])
    check = twins.lyapunov_monotone(h0, 2 * h0, e0, 1.5 * np.eye(2))  # beta 1.5 <= alpha 2
    assert check.bound == pytest.approx(0.5) and check.actual == pytest.approx(1.5**2 / 8)
    with pytest.raises(ValueError, match="beta <= alpha"):
        twins.lyapunov_monotone(h0, 2 * h0, e0, 3 * np.eye(2))


def test_magnitude_pruning_bound_closed_form_and_no_updates_rule():
    w = np.array([[1.0, -2.0], [3.0, -0.5]])
    pruned = np.where(np.abs(w) > 1.5, w, 0.0)  # drops 1 and -0.5: tau = 1, k = 2
    check = twins.magnitude_pruning_frobenius(w, pruned)
    assert check.bound == pytest.approx(np.sqrt(2)) and check.actual == pytest.approx(np.sqrt(1.25))
    assert not twins.magnitude_pruning_frobenius(w, pruned + 0.1).holds()  # weight updates: not applicable


def test_rtn_step_and_rounding_closed_form():
    """3 bits: step = max|w| / 3 per column; w = 1 rounds to 2/3 * 1 (error 1/3 = s/2 exactly)."""
    w = np.array([[2.0, 0.0], [1.0, 0.0]])
    step = twins.rtn_step(w, 3)
    assert np.allclose(step[:, 0], 2.0 / 3.0) and np.all(step[:, 1] == 0)
    quantized = np.array([[2.0, 0.0], [4.0 / 3.0, 0.0]])
    assert twins.rtn_rounding_bound(w, quantized, 3).actual == pytest.approx(1.0)
    assert twins.rtn_frobenius_bound(w, quantized, 3).bound == pytest.approx(np.sqrt(2) / 3)
    assert not twins.rtn_rounding_bound(w, quantized + np.array([[0.0, 0.0], [0.1, 0.0]]), 3).holds()


def test_twins_agree_between_numpy_and_jax():
    rng = np.random.default_rng(0)
    a, a2, b, b2 = (rng.standard_normal(s) for s in [(5, 6), (5, 6), (6, 3), (6, 3)])
    x = rng.standard_normal((4, 5))
    reference = twins.two_matrix_chain(a, a2, b, b2, x, "spectral")
    with jax.enable_x64(True):
        result = jax.jit(lambda *m: twins.two_matrix_chain(*m, "spectral"))(*map(jnp.asarray, (a, a2, b, b2, x)))
        assert float(result.bound) == pytest.approx(float(reference.bound), rel=1e-12)
        assert float(result.actual) == pytest.approx(float(reference.actual), rel=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_lipschitz_constants_bound_the_slope(name):
    """Finite-difference slopes on a fine grid never exceed the certified constant (and come close)."""
    fn, lipschitz = ACTIVATIONS[name]
    x = np.linspace(-20, 20, 400_001)
    slopes = np.abs(np.diff(fn(x)) / np.diff(x))
    assert slopes.max() <= lipschitz
    assert slopes.max() >= lipschitz - 0.01
