"""Hypothesis twins of lean/RhojaxBounds/Propagation.lean: one test per theorem, float64."""

from __future__ import annotations

import numpy as np
from bound_strategies import dims, gaussian, norm, op_norms, scales, seeds
from hypothesis import given
from hypothesis import strategies as st

from rhojax.bounds import twins

layers = st.integers(min_value=1, max_value=12)


@given(dims, dims, layers, st.lists(st.floats(0.05, 3.0), min_size=12, max_size=12), scales, op_norms, seeds)
def test_product_propagation(assert_bound, n, d, num_layers, gains, se, op, seed):
    rng = np.random.default_rng(seed)
    maps = [gaussian(rng, (d, d), g / np.sqrt(d)) for g in gains[:num_layers]]
    e0 = gaussian(rng, (n, d), se)
    e = e0
    for a in maps:
        e = e @ a
    assert_bound("product_propagation", twins.product_propagation(e0, maps, op), norm(e))


@given(dims, dims, layers, st.floats(0.0, 0.999), scales, scales, op_norms, seeds)
def test_geometric_series_bound(assert_bound, n, d, num_layers, rho, se, delta, op, seed):
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(num_layers):
        a = gaussian(rng, (d, d), 1.0)
        maps.append(a * (rho * rng.uniform(0.5, 1.0) / max(twins.op_norm(a, op), 1e-300)))
    injections = [gaussian(rng, (n, d), 1.0) for _ in range(num_layers)]
    injections = [e * (delta * rng.uniform(0.0, 1.0) / max(twins.fro(e), 1e-300)) for e in injections]
    e0 = gaussian(rng, (n, d), se)
    e, worst = e0, 0.0
    for a, injection in zip(maps, injections, strict=True):
        e = e @ a + injection
        worst = max(worst, norm(e))
    assert_bound("geometric_series_bound", twins.geometric_series_bound(e0, maps, injections, op), worst)


@given(dims, dims, st.floats(0.1, 10.0), st.floats(0.0, 1.0), scales, scales, seeds)
def test_lyapunov_monotone(assert_bound, n, d, alpha, beta_fraction, sh, se, seed):
    rng = np.random.default_rng(seed)
    h0 = gaussian(rng, (n, d), sh)
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    h1 = h0 @ (alpha * rotation)  # hidden growth exactly alpha
    a = gaussian(rng, (d, d), 1.0)
    # beta <= alpha with a margin for round-off: at beta_fraction = 1 the computed spectral norm and hidden
    # growth can land a few ulps on the wrong side of each other, outside the theorem's hypothesis
    sigma = np.linalg.svd(a, compute_uv=False)[0]
    error_map = a * (beta_fraction * (1 - 1e-9) * (norm(h1) / norm(h0)) / max(sigma, 1e-300))
    e0 = gaussian(rng, (n, d), se)
    actual = (norm(e0 @ error_map) / norm(h1)) ** 2
    assert_bound("lyapunov_monotone", twins.lyapunov_monotone(h0, h1, e0, error_map), actual)
