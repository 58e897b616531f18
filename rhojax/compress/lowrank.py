"""Low-rank approximation: truncated SVD and its activation-aware variant."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rhojax.errors import RhojaxError


def _check_rank(w: jax.Array, rank: int) -> int:
    rank = int(rank)
    if not 0 <= rank <= min(w.shape):
        raise RhojaxError(f"rank {rank} is outside [0, {min(w.shape)}] for a matrix of shape {w.shape}")
    return rank


def rank_truncate(a: jax.Array, rank: int) -> jax.Array:
    """The best rank-``rank`` approximation of ``a`` (Eckart-Young): ``U_r diag(s_r) V_r^T``."""
    u, s, vt = jnp.linalg.svd(a.astype(jnp.float32), full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def truncated_svd(w: jax.Array, rank: int) -> jax.Array:
    """Rank-``rank`` truncated SVD of ``w``; its spectral-norm error is ``sigma_{rank+1}``."""
    return rank_truncate(w, _check_rank(w, rank)).astype(w.dtype)


def activation_aware_svd(w: jax.Array, hessian: jax.Array, rank: int, *, damp: float = 1e-6) -> jax.Array:
    """The rank-``rank`` ``W'`` minimising ``||X W - X W'||_F`` (SVD-LLM style whitening).

    With ``H = X^T X + lambda I = R^T R`` (``R = L^T``, ``L`` its Cholesky factor,
    ``lambda = damp * mean(diag H)``), ``||X A||_F = ||R A||_F``, so ``W' = R^-1 trunc_r(R W)``;
    the residual ``||R (W - W')||_F^2`` is the sum of the squared trailing singular values of ``R W``.
    """
    rank = _check_rank(w, rank)
    h = hessian.astype(jnp.float32)
    h = h + damp * jnp.mean(jnp.diag(h)) * jnp.eye(h.shape[0], dtype=h.dtype)
    lower = jnp.linalg.cholesky(h)
    whitened = lower.T @ w.astype(jnp.float32)
    approx = jax.scipy.linalg.solve_triangular(lower.T, rank_truncate(whitened, rank), lower=False)
    return approx.astype(w.dtype)
