"""Variance vs importance: gradients of every state, subspace comparison and ablation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rhojax.models import forward
from rhojax.structure.hidden import hidden_and_gradients, run_from
from rhojax.structure.subspaces import (
    ablation_nll,
    accumulate_statistics,
    compare_subspaces,
    mean_ablate,
    principal_cosines,
    random_basis,
    subspace_overlap,
)
from tests.test_structure_helpers import loop_nll_from, loop_states, tiny_model, tiny_windows


def test_one_backward_pass_gives_every_layer_gradient():
    config, params = tiny_model()
    tokens = jnp.asarray(tiny_windows(2, 12))
    hidden, grads = hidden_and_gradients(config, params, tokens)
    states = loop_states(config, params, tokens)
    np.testing.assert_allclose(hidden, np.stack(states), rtol=1e-5, atol=1e-5)
    for t in (0, 1, config.num_layers):  # first, middle and final state, each against its own grad
        expected = jax.grad(loop_nll_from, argnums=2)(config, params, states[t], t, tokens)
        np.testing.assert_allclose(grads[t], expected, rtol=1e-4, atol=1e-5)


def test_run_from_matches_a_plain_loop_at_every_start():
    config, params = tiny_model()
    tokens = jnp.asarray(tiny_windows(2, 12))
    states = loop_states(config, params, tokens)
    for t, h in enumerate(states):
        np.testing.assert_allclose(run_from(config, params, h, t), states[-1], rtol=1e-5, atol=1e-5)
    _, hidden = forward(config, params, tokens, return_hidden=True)
    np.testing.assert_allclose(hidden[-1], states[-1], rtol=1e-5, atol=1e-5)


def _planted(seed: int = 0, d: int = 12, k: int = 3, n: int = 4000):
    """States with high variance in span(A) and a loss that depends on span(B) only (A, B orthogonal)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = q[:, :k], q[:, k : 2 * k]
    x = 10.0 * rng.normal(size=(n, k)) @ a.T + 1.0 * rng.normal(size=(n, k)) @ b.T
    x += 0.3 * rng.normal(size=(n, d)) @ q[:, 2 * k :] @ q[:, 2 * k :].T + 2.0 * a.sum(1)
    weights = jnp.asarray([3.0, 2.0, 1.0])

    def loss(h):
        return jnp.sum(jnp.log(jnp.cosh((h @ jnp.asarray(b, jnp.float32)) * weights)))

    return a, b, jnp.asarray(x, jnp.float32), loss


def test_finds_the_planted_variance_and_importance_subspaces():
    a, b, x, loss = _planted()
    grads = jax.grad(loss)(x)
    batches = [(x[None, None, i : i + 1000], grads[None, None, i : i + 1000]) for i in range(0, len(x), 1000)]
    stats = accumulate_statistics(batches, skip=0)
    [layer] = compare_subspaces(stats, k=3)
    assert principal_cosines(layer.variance_basis, a).min() > 0.999
    assert principal_cosines(layer.importance_basis, b).min() > 0.999
    assert layer.overlap < 1e-3
    assert layer.gradient_in_variance < 1e-3
    assert layer.variance_in_variance > 0.95
    np.testing.assert_allclose(stats.mean[0], np.asarray(x, np.float64).mean(0), atol=1e-4)


def test_ablating_the_variance_subspace_leaves_a_loss_that_ignores_it_unchanged():
    a, b, x, loss = _planted()
    mean = x.mean(0)
    h = x[None]  # (1, n, D): positions along the token axis
    unchanged = loss(mean_ablate(h, jnp.asarray(a, jnp.float32), mean, skip=0))
    changed = loss(mean_ablate(h, jnp.asarray(b, jnp.float32), mean, skip=0))
    np.testing.assert_allclose(unchanged, loss(h), rtol=1e-4)
    # every token's loss-relevant components now equal the mean's: the loss of the mean, n times
    np.testing.assert_allclose(changed, len(x) * loss(mean[None]), rtol=1e-4)
    assert abs(changed - loss(h)) > 0.1 * loss(h)


def test_mean_ablate_keeps_skipped_positions_and_projects_the_rest():
    rng = np.random.default_rng(3)
    h = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
    basis = jnp.asarray(np.linalg.qr(rng.normal(size=(6, 2)))[0], jnp.float32)
    mean = jnp.asarray(rng.normal(size=6), jnp.float32)
    out = mean_ablate(h, basis, mean, skip=1)
    np.testing.assert_array_equal(out[:, 0], h[:, 0])
    np.testing.assert_allclose((out[:, 1:] - mean) @ basis, 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, 1:] - h[:, 1:], -((h[:, 1:] - mean) @ basis) @ basis.T, atol=1e-6)


def test_ablation_nll_matches_a_plain_loop():
    config, params = tiny_model()
    windows = tiny_windows(3, 12)
    states = np.stack(loop_states(config, params, jnp.asarray(windows)))
    basis = random_basis(jax.random.PRNGKey(0), config.hidden_size, 4)
    mean = states[2, :, 1:].reshape(-1, config.hidden_size).mean(0)
    got = ablation_nll(config, params, states, windows, 2, basis, mean, batch_size=2)
    h = np.array(states[2])
    h[:, 1:] -= ((h[:, 1:] - mean) @ basis) @ basis.T
    expected = loop_nll_from(config, params, jnp.asarray(h, jnp.float32), 2, jnp.asarray(windows))
    np.testing.assert_allclose(got, float(expected) / (3 * 11), rtol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 10), st.integers(1, 4), st.integers(0, 10_000))
def test_overlap_is_a_rotation_invariant_mean_squared_cosine(d, k, seed):
    k = min(k, d)
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    a, b = random_basis(keys[0], d, k), random_basis(keys[1], d, k)
    rotation = random_basis(keys[2], k, k)
    cos = principal_cosines(a, b)
    assert np.all((cos >= 0) & (cos <= 1)) and np.all(np.diff(cos) <= 1e-12)
    np.testing.assert_allclose(subspace_overlap(a, b), np.mean(cos**2), atol=1e-9)
    np.testing.assert_allclose(subspace_overlap(a @ rotation, b), subspace_overlap(a, b), atol=1e-9)
    np.testing.assert_allclose(subspace_overlap(b, a), subspace_overlap(a, b), atol=1e-9)
    np.testing.assert_allclose(principal_cosines(a, a @ rotation), 1.0, atol=1e-9)
