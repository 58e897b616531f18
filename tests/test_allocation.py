"""Sparsity schedules: exact target mean, bounds, directions, and the signals they use."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rhojax.allocation import (
    absorption_corrected,
    alpha_pruning,
    depth_increasing_sparsity,
    esd_eigenvalues,
    hill_alpha,
    output_amplification,
    owl,
    rho_guided,
    shift_to_mean,
    uniform,
)
from rhojax.allocation.schedules import ALPHA_EPS, DEPTH_DELTA, OWL_LAMBDA
from rhojax.errors import RhojaxError

TARGETS = st.sampled_from([0.5, 0.6, 0.7]) | st.floats(0.05, 0.9)
SCORES = st.integers(1, 40).flatmap(lambda n: arrays(np.float64, n, elements=st.floats(-5, 5)))
POSITIVE = st.integers(1, 40).flatmap(lambda n: arrays(np.float64, n, elements=st.floats(0.05, 5)))


def check(s: np.ndarray, target: float, half_width: float) -> None:
    assert abs(s.mean() - target) < 1e-12
    assert s.min() >= max(0.0, target - half_width) and s.max() <= min(1.0, target + half_width)


@given(SCORES, TARGETS, st.floats(0, 0.5), st.floats(0, 0.5))
def test_shift_to_mean_is_exact_and_bounded(x, target, below, above):
    lo, hi = target - below, target + above
    s = shift_to_mean(x, target, lo, hi)
    assert abs(s.mean() - target) < 1e-12
    assert s.min() >= lo and s.max() <= hi
    assert np.all(np.diff(s[np.argsort(x, kind="stable")]) >= 0)  # order preserved


def test_shift_to_mean_rejects_unreachable_target():
    with pytest.raises(RhojaxError, match="outside the bounds"):
        shift_to_mean(np.zeros(3), 0.9, 0.1, 0.5)


@given(SCORES, TARGETS)
def test_every_schedule_hits_the_target_within_bounds(score, target):
    n = len(score)
    check(uniform(n, target), target, 0.0)
    check(depth_increasing_sparsity(n, target), target, DEPTH_DELTA)
    check(owl(np.abs(score), target), target, OWL_LAMBDA)
    check(alpha_pruning(2 + np.abs(score), target), target, ALPHA_EPS)
    check(rho_guided(np.exp(score / 5), target), target, DEPTH_DELTA)
    gamma = 0.05
    u = np.clip(score, -np.log(3), np.log(3))
    check(absorption_corrected(owl(np.abs(score), target), u, target, OWL_LAMBDA, gamma), target,
          OWL_LAMBDA + 2 * gamma * np.log(3))


@given(st.integers(1, 40), st.floats(0, 1), TARGETS)
def test_owl_equals_uniform_when_outlier_ratios_are_equal(n, ratio, target):
    np.testing.assert_allclose(owl(np.full(n, ratio), target), uniform(n, target), rtol=0, atol=1e-15)


@given(POSITIVE, TARGETS)
def test_directions(score, target):
    """More outliers -> less sparsity; larger alpha -> more sparsity; deeper -> more sparsity."""
    order = np.argsort(score, kind="stable")
    assert np.all(np.diff(owl(score, target)[order]) <= 1e-15)
    assert np.all(np.diff(alpha_pruning(score, target)[order]) >= -1e-15)
    assert np.all(np.diff(depth_increasing_sparsity(len(score), target)) >= -1e-15)


def test_output_amplification_is_the_product_after_each_layer():
    rho = np.array([1.5, 0.5, 2.0, 0.8])
    expected = [np.prod(rho[i + 1 :]) for i in range(len(rho))]
    np.testing.assert_allclose(output_amplification(rho), expected)
    s = rho_guided(rho, 0.6)
    assert s.argmin() == np.argmax(expected)  # most amplified downstream -> fewest pruned weights


@given(SCORES, TARGETS)
def test_absorption_correction_vanishes_for_constant_u(score, target):
    base = owl(np.abs(score), target)
    np.testing.assert_allclose(absorption_corrected(base, np.full(len(score), 0.3), target, OWL_LAMBDA), base,
                               atol=1e-12)


def test_absorption_correction_direction():
    base = uniform(4, 0.7)
    u = np.array([1.0, 0.0, -1.0, 0.0])  # layer 0 amplifies most, layer 2 absorbs most
    s = absorption_corrected(base, u, 0.7, 0.0, gamma=0.05)
    np.testing.assert_allclose(s, [0.65, 0.7, 0.75, 0.7])


def random_orthogonal(rng, n):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q


def test_hill_alpha_closed_form_from_a_constructed_spectrum():
    rng = np.random.default_rng(0)
    eig = np.sort(np.exp(rng.normal(size=24)))  # eigenvalues of W^T W
    w = random_orthogonal(rng, 40)[:, :24] @ np.diag(np.sqrt(eig)) @ random_orthogonal(rng, 24)
    tail = eig[12:]
    expected = 1 + len(tail) / np.log(tail / tail[0]).sum()
    np.testing.assert_allclose(esd_eigenvalues(w.astype(np.float32)), eig[::-1], rtol=1e-4)
    assert hill_alpha(esd_eigenvalues(w.astype(np.float32))) == pytest.approx(expected, rel=1e-3)
    assert hill_alpha(eig * 7.0) == pytest.approx(hill_alpha(eig), rel=1e-12)  # scale invariant


def test_hill_alpha_recovers_a_power_law_exponent():
    """Pareto(k) eigenvalues have density ~ lambda^-(k + 1); the tail above the median is Pareto(k) again."""
    rng = np.random.default_rng(1)
    for k in (1.0, 2.0, 3.5):
        eig = 1.0 + rng.pareto(k, size=200_000)
        assert hill_alpha(eig) == pytest.approx(k + 1, rel=0.02)
