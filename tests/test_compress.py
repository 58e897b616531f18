"""Compression operators against closed forms and plain NumPy re-implementations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhojax.compress import (
    METHODS,
    MatrixStats,
    activation_aware_svd,
    compress_matrix,
    magnitude_prune,
    rotated_rtn_quantize,
    rtn_quantize,
    sparsegpt_prune,
    truncated_svd,
    wanda_prune,
)
from rhojax.compress.quantize import quantization_step, random_orthogonal, rotate_inputs
from rhojax.errors import RhojaxError

FAST = settings(max_examples=20, deadline=None)


def gaussian(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def correlated_inputs(seed: int, tokens: int, fan_in: int) -> np.ndarray:
    """Inputs with unequal feature scales and correlations, like real activations."""
    rng = np.random.default_rng(seed)
    mix = np.eye(fan_in) + 0.3 * rng.standard_normal((fan_in, fan_in)) / np.sqrt(fan_in)
    x = rng.standard_normal((tokens, fan_in)) * np.linspace(0.1, 3.0, fan_in)
    return (x @ mix).astype(np.float32)


shapes = st.tuples(st.sampled_from([8, 16, 24]), st.sampled_from([4, 8, 12]))


# ----------------------------------------------------------------------------- magnitude


@FAST
@given(shape=shapes, sparsity=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_magnitude_matrix_hits_exact_sparsity_and_drops_smallest(shape, sparsity, seed):
    w = gaussian(seed, shape)
    pruned = np.asarray(magnitude_prune(jnp.asarray(w), sparsity))
    dropped = pruned == 0
    assert dropped.sum() == round(sparsity * w.size)
    assert np.array_equal(pruned[~dropped], w[~dropped])
    if dropped.any() and (~dropped).any():
        assert np.abs(w[dropped]).max() <= np.abs(w[~dropped]).min()


@FAST
@given(shape=shapes, sparsity=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_magnitude_row_prunes_each_output_channel_exactly(shape, sparsity, seed):
    w = gaussian(seed, shape)
    pruned = np.asarray(magnitude_prune(jnp.asarray(w), sparsity, scope="row"))
    for j in range(w.shape[1]):  # an output row of a torch Linear is a column here
        col, kept = w[:, j], pruned[:, j] != 0
        assert (~kept).sum() == round(sparsity * w.shape[0])
        if kept.any() and (~kept).any():
            assert np.abs(col[~kept]).max() <= np.abs(col[kept]).min()


@pytest.mark.parametrize("nm", [(2, 4), (4, 8), (1, 4)])
def test_nm_pattern_holds_in_every_group(nm):
    n, m = nm
    w = gaussian(0, (32, 6))
    w_j = jnp.asarray(w)
    for pruned in (magnitude_prune(w_j, None, nm=nm), wanda_prune(w_j, jnp.ones(32), None, nm=nm)):
        groups = np.asarray(pruned).reshape(32 // m, m, 6)
        assert ((groups != 0).sum(axis=1) == n).all()
        original = w.reshape(32 // m, m, 6)
        kept_min = np.where(groups != 0, np.abs(original), np.inf).min(axis=1)
        dropped_max = np.where(groups == 0, np.abs(original), -np.inf).max(axis=1)
        assert (dropped_max <= kept_min).all()


def test_nm_rejects_bad_shapes_and_contradicting_sparsity():
    with pytest.raises(RhojaxError):
        magnitude_prune(jnp.ones((6, 2)), None, nm=(2, 4))
    with pytest.raises(RhojaxError):
        magnitude_prune(jnp.ones((8, 2)), 0.3, nm=(2, 4))


# ----------------------------------------------------------------------------- Wanda


def wanda_reference(w: np.ndarray, norms: np.ndarray, sparsity: float) -> np.ndarray:
    """Plain loop over output channels: drop the lowest |W_ij| * ||X_i|| of each column."""
    out = w.copy()
    k = round(sparsity * w.shape[0])
    for j in range(w.shape[1]):
        scores = np.abs(w[:, j]) * norms
        out[np.argsort(scores, kind="stable")[:k], j] = 0
    return out


@FAST
@given(shape=shapes, sparsity=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_wanda_matches_a_per_row_loop(shape, sparsity, seed):
    w = gaussian(seed, shape)
    norms = np.abs(gaussian(seed + 1, (shape[0],))) + 0.1
    got = np.asarray(wanda_prune(jnp.asarray(w), jnp.asarray(norms), sparsity))
    np.testing.assert_array_equal(got, wanda_reference(w, norms, sparsity))


@FAST
@given(shape=shapes, sparsity=st.floats(0.0, 1.0), seed=st.integers(0, 10_000), c=st.floats(0.01, 100))
def test_wanda_with_equal_input_norms_is_row_magnitude(shape, sparsity, seed, c):
    w = jnp.asarray(gaussian(seed, shape))
    got = wanda_prune(w, jnp.full(shape[0], c, jnp.float32), sparsity)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(magnitude_prune(w, sparsity, scope="row")))


def test_wanda_compares_within_rows_not_globally():
    """Scaling one output channel by 1000 changes nothing in the others' masks (a global mask would)."""
    w, norms = gaussian(3, (16, 8)), np.abs(gaussian(4, (16,))) + 0.1
    scaled = w.copy()
    scaled[:, 0] *= 1000
    a = np.asarray(wanda_prune(jnp.asarray(w), jnp.asarray(norms), 0.5)) != 0
    b = np.asarray(wanda_prune(jnp.asarray(scaled), jnp.asarray(norms), 0.5)) != 0
    np.testing.assert_array_equal(a, b)
    assert (b.sum(axis=0) == 8).all()


# ----------------------------------------------------------------------------- SparseGPT


def sparsegpt_reference(w, hessian, sparsity, block_size, damp=0.01, nm=None, per_row=False):
    """Float64 NumPy port of the reference SparseGPT loop (Frantar & Alistarh), weights (out, in); ``per_row``
    picks each block's mask within every output channel (row of ``W``) instead of over the block."""
    W = w.T.astype(np.float64).copy()
    H = hessian.astype(np.float64).copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * np.mean(np.diag(H)) * np.eye(len(H))
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T
    rows, cols = W.shape
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1, Hinv1 = W[:, i1:i2].copy(), Hinv[i1:i2, i1:i2]
        Q1, Err1 = np.zeros_like(W1), np.zeros_like(W1)
        mask = np.zeros_like(W1, dtype=bool)
        if nm is None:
            saliency = W1**2 / np.diag(Hinv1) ** 2
            if per_row:
                for r in range(rows):
                    mask[r, np.argsort(saliency[r], kind="stable")[: round(sparsity * saliency.shape[1])]] = True
            else:
                mask.flat[np.argsort(saliency.ravel(), kind="stable")[: round(sparsity * saliency.size)]] = True
        for i in range(i2 - i1):
            if nm is not None and i % nm[1] == 0:
                sal = W1[:, i : i + nm[1]] ** 2 / np.diag(Hinv1)[i : i + nm[1]] ** 2
                drop = np.argsort(sal, axis=1, kind="stable")[:, : nm[1] - nm[0]]
                mask[np.arange(rows)[:, None], i + drop] = True
            col = W1[:, i]
            q = np.where(mask[:, i], 0.0, col)
            Q1[:, i] = q
            err = (col - q) / Hinv1[i, i]
            W1[:, i:] -= np.outer(err, Hinv1[i, i:])
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W.T


@pytest.mark.parametrize(("sparsity", "nm", "block_size", "scope"), [
    (0.5, None, 16, "matrix"), (0.3, None, 48, "matrix"), (None, (2, 4), 16, "matrix"), (0.5, None, 16, "row"),
    (0.3, None, 20, "row")])
def test_sparsegpt_matches_the_reference_loop(sparsity, nm, block_size, scope):
    fan_in, fan_out = 48, 10
    w = gaussian(0, (fan_in, fan_out))
    x = correlated_inputs(1, 200, fan_in)
    x[:, 5] = 0  # a dead input
    h = x.T @ x
    got = np.asarray(sparsegpt_prune(jnp.asarray(w), jnp.asarray(h), sparsity, block_size=block_size, nm=nm,
                                     scope=scope))
    want = sparsegpt_reference(w, h, sparsity, block_size, nm=nm, per_row=scope == "row")
    np.testing.assert_array_equal(got == 0, want == 0)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * np.abs(want).max())


def test_sparsegpt_exact_sparsity_nm_pattern_and_beats_magnitude():
    fan_in, fan_out = 64, 16
    w = gaussian(2, (fan_in, fan_out))
    x = correlated_inputs(3, 400, fan_in)
    h = jnp.asarray(x.T @ x)
    pruned = np.asarray(sparsegpt_prune(jnp.asarray(w), h, 0.5, block_size=32))
    assert (pruned == 0).sum() == w.size // 2
    nm = np.asarray(sparsegpt_prune(jnp.asarray(w), h, None, nm=(2, 4), block_size=32))
    assert np.all(w != 0)  # Gaussian weights: every group of 4 inputs has 4 nonzero weights to choose from
    kept = (nm.reshape(fan_in // 4, 4, fan_out) != 0).sum(axis=1)
    np.testing.assert_array_equal(kept, np.full((fan_in // 4, fan_out), 2))  # exactly 2 of every 4, no fewer

    rows = np.asarray(sparsegpt_prune(jnp.asarray(w), h, 0.5, block_size=32, scope="row"))
    np.testing.assert_array_equal((rows == 0).sum(axis=0), np.full(fan_out, fan_in // 2))  # every channel at 50%

    def error(p):
        return np.linalg.norm(x @ w - x @ np.asarray(p))

    assert error(pruned) < error(magnitude_prune(jnp.asarray(w), 0.5))
    assert error(rows) < error(magnitude_prune(jnp.asarray(w), 0.5, scope="row"))
    for prune_with in (lambda s: sparsegpt_prune(jnp.asarray(w), h, 0.5, scope=s),
                       lambda s: magnitude_prune(jnp.asarray(w), 0.5, scope=s)):
        with pytest.raises(RhojaxError, match="pruning scope 'column': choose 'matrix' or 'row'"):
            prune_with("column")


@FAST
@given(shape=st.tuples(st.integers(1, 6), st.integers(1, 9)), axis=st.integers(0, 1), data=st.data())
def test_keep_largest_with_a_traced_count_drops_exactly_the_smallest(shape, axis, data):
    from rhojax.compress.masks import keep_largest

    values = st.sampled_from([-3.0, -1.0, -0.0, 0.0, 1e-30, 1.0, 2.0, 1e30, np.inf, -np.inf])  # ties, signed zeros
    scores = np.asarray(data.draw(st.lists(values, min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])),
                        np.float32).reshape(shape)
    num_drop = data.draw(st.integers(0, shape[axis]))
    traced = np.asarray(jax.jit(keep_largest, static_argnames="axis")(jnp.asarray(scores), num_drop, axis=axis))
    order = np.argsort(scores, axis=axis, kind="stable")  # plain NumPy: drop the first num_drop of the order
    expected = np.ones(shape, bool)
    np.put_along_axis(expected, np.take(order, range(num_drop), axis=axis), False, axis=axis)
    np.testing.assert_array_equal(traced, expected)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_keep_largest_on_a_large_matrix_with_many_ties_matches_a_stable_numpy_argsort(dtype):
    from rhojax.compress.masks import keep_largest

    rng = np.random.default_rng(3)
    scores = jnp.asarray(np.round(rng.standard_normal((300, 257)) * 8) / 8, dtype)  # ~100 distinct values
    plain = np.asarray(scores.astype(jnp.float32))
    for axis, flat in ((0, True), (0, False), (1, False)):
        x = plain.reshape(-1) if flat else plain
        for num_drop in (0, 1, x.shape[axis] // 3, x.shape[axis] - 1, x.shape[axis]):
            expected = np.ones(x.shape, bool)
            order = np.argsort(x, axis=axis, kind="stable")
            np.put_along_axis(expected, np.take(order, range(num_drop), axis=axis), False, axis=axis)
            got = keep_largest(scores.reshape(-1) if flat else scores, num_drop, axis=axis)
            np.testing.assert_array_equal(np.asarray(got), expected)


def test_sparsegpt_compiles_once_for_every_sparsity():
    """Sparsity is traced: an allocation with 30 per-layer ratios must not compile 30 programs."""
    from rhojax.compress.sparsegpt import _sparsegpt

    w = jnp.asarray(gaussian(4, (32, 8)))
    x = correlated_inputs(5, 100, 32)
    h = jnp.asarray(x.T @ x)
    sparsegpt_prune(w, h, 0.5, block_size=16)
    compiled = _sparsegpt._cache_size()
    for sparsity in (0.1, 0.37, 0.61, 0.9):
        pruned = np.asarray(sparsegpt_prune(w, h, sparsity, block_size=16))
        assert (pruned == 0).sum() == 2 * round(sparsity * 16 * 8)
    assert _sparsegpt._cache_size() == compiled


# ----------------------------------------------------------------------------- low rank


@FAST
@given(shape=st.tuples(st.integers(2, 20), st.integers(2, 20)), seed=st.integers(0, 10_000), data=st.data())
def test_truncated_svd_spectral_error_is_next_singular_value(shape, seed, data):
    w = gaussian(seed, shape).astype(np.float64)
    rank = data.draw(st.integers(0, min(shape) - 1))
    sigma = np.linalg.svd(w, compute_uv=False)
    approx = np.asarray(truncated_svd(jnp.asarray(w, jnp.float32), rank), np.float64)
    assert np.linalg.matrix_rank(approx, tol=1e-4 * sigma[0]) <= rank
    np.testing.assert_allclose(np.linalg.norm(w - approx, 2), sigma[rank], rtol=1e-4, atol=1e-5 * sigma[0])


def test_activation_aware_svd_reaches_the_whitened_optimum_and_beats_plain_svd():
    fan_in, fan_out, rank = 32, 24, 6
    w = gaussian(5, (fan_in, fan_out)).astype(np.float64)
    x = correlated_inputs(6, 300, fan_in).astype(np.float64)
    h = x.T @ x
    aware = np.asarray(activation_aware_svd(jnp.asarray(w, jnp.float32), jnp.asarray(h, jnp.float32), rank))
    plain = np.asarray(truncated_svd(jnp.asarray(w, jnp.float32), rank))
    # ||X A||_F = ||R A||_F with H = R^T R, so the optimum error^2 is the tail of svd(R W)
    r = np.linalg.cholesky(h).T
    optimum = np.sqrt((np.linalg.svd(r @ w, compute_uv=False)[rank:] ** 2).sum())
    np.testing.assert_allclose(np.linalg.norm(x @ (w - aware)), optimum, rtol=1e-3)
    assert np.linalg.norm(x @ (w - aware)) < np.linalg.norm(x @ (w - plain))
    assert np.linalg.matrix_rank(aware, tol=1e-4 * np.abs(aware).max()) == rank


# ----------------------------------------------------------------------------- quantization


@FAST
@given(
    shape=st.tuples(st.sampled_from([8, 16, 32]), st.integers(1, 6)),
    bits=st.integers(2, 8),
    group=st.sampled_from([None, 4, 8]),
    seed=st.integers(0, 10_000),
)
def test_rtn_error_is_at_most_half_a_step(shape, bits, group, seed):
    w = gaussian(seed, shape, scale=3.0)
    q = np.asarray(rtn_quantize(jnp.asarray(w), bits, group_size=group))
    step = np.asarray(quantization_step(jnp.asarray(w), bits, group_size=group))
    assert (np.abs(w - q) <= step / 2 * (1 + 1e-5) + 1e-7).all()
    size = shape[0] if group is None else group
    levels = np.round(q / np.where(step > 0, step, 1)).reshape(shape[0] // size, size, shape[1])
    assert (np.abs(levels) <= 2 ** (bits - 1) - 1).all()
    # the step is the group's max |w| over the largest level, per output channel (column)
    w_groups = np.abs(w).reshape(shape[0] // size, size, shape[1]).max(axis=1)
    np.testing.assert_allclose(step.reshape(shape[0] // size, size, shape[1])[:, 0], w_groups / (2 ** (bits - 1) - 1),
                               rtol=1e-6)


def test_rotation_alone_leaves_w_x_unchanged():
    w, x = gaussian(7, (32, 12)), gaussian(8, (5, 32))
    q = random_orthogonal(jax.random.PRNGKey(0), 32)
    np.testing.assert_allclose(np.asarray(q.T @ q), np.eye(32), atol=1e-5)
    rotated = (jnp.asarray(x) @ q) @ rotate_inputs(jnp.asarray(w), q)
    np.testing.assert_allclose(np.asarray(rotated), x @ w, rtol=1e-4, atol=1e-4)


def test_rotated_rtn_error_is_measured_in_the_original_basis():
    w = gaussian(9, (32, 12))
    w[3] *= 50  # an outlier input row: rotation should spread it
    key = jax.random.PRNGKey(1)
    got = np.asarray(rotated_rtn_quantize(jnp.asarray(w), 4, key))
    q = np.asarray(random_orthogonal(key, 32))
    in_rotated_basis = np.asarray(rtn_quantize(jnp.asarray(q.T @ w), 4))
    np.testing.assert_allclose(got, q @ in_rotated_basis, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(w - got), np.linalg.norm(q.T @ w - in_rotated_basis), rtol=1e-4)
    assert np.linalg.norm(w - got) < np.linalg.norm(w - np.asarray(rtn_quantize(jnp.asarray(w), 4)))


# ----------------------------------------------------------------------------- dispatcher


@pytest.mark.parametrize("method", METHODS)
def test_compress_matrix_dispatches_every_method(method):
    w = jnp.asarray(gaussian(10, (16, 8)))
    x = correlated_inputs(11, 64, 16)
    stats = MatrixStats(jnp.asarray(np.linalg.norm(x, axis=0)), jnp.asarray(x.T @ x))
    level = {"lowrank": 4, "lowrank_aware": 4, "rtn": 4, "rotated_rtn": 4}.get(method, 0.5)
    out = compress_matrix(method, w, level, stats, jax.random.PRNGKey(0))
    assert out.shape == w.shape and out.dtype == w.dtype
    assert not np.array_equal(np.asarray(out), np.asarray(w))


def test_compress_matrix_names_what_is_missing():
    w = jnp.ones((8, 4))
    with pytest.raises(RhojaxError, match="unknown compression method"):
        compress_matrix("prune_everything", w, 0.5)
    for method in ("wanda", "sparsegpt", "lowrank_aware", "rotated_rtn"):
        with pytest.raises(RhojaxError, match="needs"):
            compress_matrix(method, w, 0.5 if method in ("wanda", "sparsegpt") else 2)
