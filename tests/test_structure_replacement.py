"""Block linear replacement: the ridge fit, R^2, perplexity after replacement, compression ratio."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models import block_params, count_params
from rhojax.structure.moments import drop_positions
from rhojax.structure.replacement import (
    SpanMoments,
    block_parameters,
    compose,
    compression_ratio,
    fit_spans,
    r_squared,
    replacement_nll,
)
from tests.test_structure_helpers import loop_nll_from, loop_states, tiny_model, tiny_windows


def _affine_stack(seed=0, d=8, n=3, t=40, depth=3):
    """States with ``h_{s+1} = h_s A_s + c_s`` exactly, shape (depth + 1, n, t, d)."""
    rng = np.random.default_rng(seed)
    maps = [(np.eye(d) + 0.3 * rng.normal(size=(d, d)), rng.normal(size=d)) for _ in range(depth)]
    states = [rng.normal(size=(n, t, d)) * rng.uniform(0.5, 3.0, size=d) + 5.0]
    for a, c in maps:
        states.append(states[-1] @ a + c)
    return np.stack(states).astype(np.float32), maps


def test_fit_recovers_exactly_affine_blocks_and_their_composition():
    hidden, maps = _affine_stack()
    acc = SpanMoments([(0, 1), (1, 1), (2, 1), (0, 2), (1, 2)])
    for i in range(hidden.shape[1]):  # one window per batch, as the drivers feed it
        acc.add(drop_positions(hidden[:, i : i + 1], 1))
    fits = acc.fit(ridge=1e-9)
    (a0, c0), (a1, c1), _ = maps
    expected = {(0, 1): (a0, c0), (1, 1): maps[1], (2, 1): maps[2], (0, 2): (a0 @ a1, c0 @ a1 + c1),
                (1, 2): (a1 @ maps[2][0], c1 @ maps[2][0] + maps[2][1])}
    for fit in fits:
        a, c = expected[(fit.start, fit.length)]
        np.testing.assert_allclose(fit.w, a, atol=2e-3)
        np.testing.assert_allclose(fit.b, c, atol=2e-2)
        r2 = r_squared(fit, hidden)
        np.testing.assert_allclose(r2["r2"], 1.0, atol=1e-6)
        np.testing.assert_allclose(r2["r2_update"], 1.0, atol=1e-5)
    chained = compose(fits[0], fits[1])  # for an exactly affine stack, chaining equals the direct fit
    np.testing.assert_allclose(chained.w, fits[3].w, atol=2e-3)
    np.testing.assert_allclose(chained.b, fits[3].b, atol=2e-2)


def test_r_squared_matches_its_definition_on_a_noisy_map():
    hidden, _ = _affine_stack(seed=1)
    rng = np.random.default_rng(2)
    hidden[1] += 0.5 * rng.normal(size=hidden[1].shape).astype(np.float32)
    acc = SpanMoments([(0, 1)])
    acc.add(drop_positions(hidden, 1))
    [fit] = acc.fit(ridge=1e-6)
    x, y = (hidden[s, :, 1:].reshape(-1, 8).astype(np.float64) for s in (0, 1))
    w, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)  # independent least squares
    np.testing.assert_allclose(fit.w, w[:-1], atol=1e-3)
    residual = y - np.c_[x, np.ones(len(x))] @ w
    expected = 1 - (residual**2).sum() / ((y - y.mean(0)) ** 2).sum()
    np.testing.assert_allclose(r_squared(fit, hidden)["r2"], expected, atol=1e-5)
    assert r_squared(fit, hidden)["r2"] < 1


def _with_identity_block(layer: int):
    """The tiny model with block ``layer`` made exactly the identity (zero attention and MLP outputs)."""
    config, params = tiny_model()
    blocks = dict(params["blocks"])
    for kind in ("o", "down"):
        blocks[kind] = {"w": blocks[kind]["w"].at[layer].set(0.0)}
    return config, {**params, "blocks": blocks}


def test_an_identity_block_is_fitted_as_identity_and_replacing_it_changes_nothing():
    config, params = _with_identity_block(2)
    windows = tiny_windows(6, 24)
    [fit] = fit_spans(config, params, windows, [(2, 1)], ridge=1e-9, batch_size=3)
    np.testing.assert_allclose(fit.w, np.eye(config.hidden_size), atol=1e-3)
    np.testing.assert_allclose(fit.b, 0.0, atol=1e-3)
    states = np.stack(loop_states(config, params, jnp.asarray(windows)))
    np.testing.assert_allclose(r_squared(fit, states)["r2"], 1.0, atol=1e-6)
    dense = float(loop_nll_from(config, params, jnp.asarray(states[0]), 0, jnp.asarray(windows))) / (6 * 23)
    np.testing.assert_allclose(replacement_nll(config, params, fit, states, windows, batch_size=4), dense,
                               rtol=1e-4)


def test_replacement_nll_matches_a_plain_loop():
    config, params = tiny_model()
    windows = tiny_windows(4, 16)
    [fit] = fit_spans(config, params, windows, [(0, 2)], ridge=1e-3, batch_size=2)
    states = np.stack(loop_states(config, params, jnp.asarray(windows)))
    h = np.array(states[2])
    h[:, 1:] = states[0, :, 1:] @ fit.w + fit.b  # position 0 keeps its clean state
    expected = float(loop_nll_from(config, params, jnp.asarray(h, jnp.float32), 2, jnp.asarray(windows)))
    got = replacement_nll(config, params, fit, states, windows, batch_size=3)
    np.testing.assert_allclose(got, expected / (4 * 15), rtol=1e-5)


def test_compression_ratio_counts_the_real_block_parameters():
    config, params = tiny_model()
    assert block_parameters(config) == count_params(block_params(params, 0))
    d = config.hidden_size
    np.testing.assert_allclose(compression_ratio(config, 3), 3 * count_params(block_params(params, 0)) / (d * d + d))
    assert jax.tree.leaves(params)  # the model is real, not empty


def test_ridge_shrinks_towards_the_identity_not_towards_zero():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 200, 6)) * np.array([10.0, 5.0, 1.0, 1e-3, 1e-3, 1e-3])  # near-degenerate directions
    hidden = np.stack([x, x + 0.1 * rng.normal(size=x.shape)]).astype(np.float32)  # a residual block's shape
    acc = SpanMoments([(0, 1)])
    acc.add(drop_positions(hidden, 0))
    [strong] = acc.fit(ridge=1e3)  # overwhelming penalty: the map is the identity
    np.testing.assert_allclose(strong.w, np.eye(6), atol=1e-2)
    [fit] = acc.fit(ridge=0.5)
    x64, y64 = (hidden[s, 0].astype(np.float64) for s in (0, 1))
    xc, yc = x64 - x64.mean(0), y64 - y64.mean(0)
    lam = 0.5 * np.trace(xc.T @ xc / len(xc)) / 6
    # optimality of  ||y_c - x_c W||^2 / n + lam ||W - I||^2 : its gradient vanishes at the fit
    gradient = xc.T @ (xc @ fit.w - yc) / len(xc) + lam * (fit.w - np.eye(6))
    np.testing.assert_allclose(gradient, 0.0, atol=1e-4 * lam)
    np.testing.assert_allclose(fit.b, y64.mean(0) - x64.mean(0) @ fit.w, atol=1e-4)
