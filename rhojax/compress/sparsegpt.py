"""SparseGPT (Frantar & Alistarh 2023): one-shot OBS pruning with weight updates, in JAX.

For ``w`` (in, out) and the calibration Hessian ``H = X^T X`` (in, in), the inputs are processed in
order, in column blocks of ``block_size`` inputs. With ``U`` the upper Cholesky factor of
``(H + lambda I)^-1`` (``lambda = damp * mean(diag H)``), pruning input ``i`` of output channel ``j``
sets ``W_ij = 0`` and spreads its error ``e = W_ij / U_ii`` over the not-yet-processed inputs:
``W_{kj} -= e * U_ik`` for ``k > i`` (the OBS update). The mask is chosen per block from the
saliency ``W_ij^2 / U_ii^2``: exactly ``round(sparsity * block_size * out)`` entries of each block
(whole matrix exact when ``in`` is a multiple of ``block_size``), or per group of ``m`` inputs for N:M.
With ``scope="row"`` the block's mask is chosen per output channel instead: ``round(sparsity * block_size)``
inputs of every channel, so every output channel ends at the same sparsity (Wanda's comparison group),
where the block-wide choice can prune some channels far more than others.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rhojax.compress.masks import Scope, check_nm, check_scope, check_sparsity, keep_largest, nm_mask
from rhojax.errors import RhojaxError


def damped_inverse_cholesky(hessian: jax.Array, damp: float) -> tuple[jax.Array, jax.Array]:
    """``(U, dead)``: the upper Cholesky factor of ``(H + lambda I)^-1`` and the never-active inputs.

    Inputs with ``H_ii = 0`` get ``H_ii = 1`` (their weights are irrelevant to ``X W``).
    """
    h = hessian.astype(jnp.float32)
    dead = jnp.diag(h) == 0
    h = h + jnp.diag(jnp.where(dead, 1.0, 0.0))
    h = h + damp * jnp.mean(jnp.diag(h)) * jnp.eye(h.shape[0], dtype=h.dtype)
    lower = jnp.linalg.cholesky(h)
    h_inv = jax.scipy.linalg.cho_solve((lower, True), jnp.eye(h.shape[0], dtype=h.dtype))
    return jnp.linalg.cholesky(h_inv).T, dead


def _prune_block(wb: jax.Array, ub: jax.Array, mask: jax.Array, nm: tuple[int, int] | None):
    """OBS-prune one block ``wb`` (out, b) in input order; returns (pruned block, scaled errors)."""
    size = wb.shape[1]
    group = 1 if nm is None else nm[1]
    diag = jnp.diag(ub)

    def group_step(g, carry):
        wb, mask, errors = carry
        start = g * group
        if nm is not None:
            cols = jax.lax.dynamic_slice_in_dim(wb, start, group, axis=1)
            d = jax.lax.dynamic_slice_in_dim(diag, start, group)
            saliency = (cols**2 / d**2).T  # (m, out): inputs on axis 0 like every mask
            mask = jax.lax.dynamic_update_slice_in_dim(mask, nm_mask(saliency, nm).T, start, axis=1)
        for c in range(group):
            i = start + c
            col = jax.lax.dynamic_index_in_dim(wb, i, axis=1, keepdims=False)
            keep = jax.lax.dynamic_index_in_dim(mask, i, axis=1, keepdims=False)
            err = (col - jnp.where(keep, col, 0.0)) / diag[i]
            wb = wb - err[:, None] * jax.lax.dynamic_index_in_dim(ub, i, axis=0, keepdims=False)[None, :]
            errors = jax.lax.dynamic_update_index_in_dim(errors, err, i, axis=1)
        return wb, mask, errors

    carry = (wb, mask, jnp.zeros_like(wb))
    wb, mask, errors = jax.lax.fori_loop(0, size // group, group_step, carry)
    return jnp.where(mask, wb, 0.0), errors


def _block_bounds(fan_in: int, block_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + block_size, fan_in)) for start in range(0, fan_in, block_size)]


@functools.partial(jax.jit, static_argnames=("block_size", "damp", "nm", "per_row"))
def _sparsegpt(w, hessian, drops, block_size, damp, nm, per_row=False):
    """``drops[b]``: entries to prune in block ``b``, of each output channel where ``per_row`` (traced, so every
    sparsity shares one program)."""
    u, dead = damped_inverse_cholesky(hessian, damp)
    wt = jnp.where(dead[None, :], 0.0, w.T.astype(jnp.float32))  # (out, in): inputs on axis 1
    fan_in = wt.shape[1]
    for b, (start, stop) in enumerate(_block_bounds(fan_in, block_size)):
        wb, ub = wt[:, start:stop], u[start:stop, start:stop]
        if nm is None and per_row:
            mask = keep_largest(wb**2 / jnp.diag(ub) ** 2, drops[b], axis=1)
        elif nm is None:
            mask = keep_largest((wb**2 / jnp.diag(ub) ** 2).reshape(-1), drops[b], axis=0).reshape(wb.shape)
        else:
            mask = jnp.ones_like(wb, dtype=bool)
        pruned, errors = _prune_block(wb, ub, mask, nm)
        wt = wt.at[:, start:stop].set(pruned)
        if stop < fan_in:
            wt = wt.at[:, stop:].add(-errors @ u[start:stop, stop:])
    return wt.T.astype(w.dtype)


def sparsegpt_prune(
    w: jax.Array,
    hessian: jax.Array,
    sparsity: float | None,
    *,
    block_size: int = 128,
    damp: float = 0.01,
    nm: tuple[int, int] | None = None,
    scope: Scope = "matrix",
) -> jax.Array:
    """Prune ``w`` (in, out) to ``sparsity`` (or N:M) and update the kept weights to preserve ``X W``.

    ``hessian`` is ``X^T X`` (in, in) summed over calibration tokens (any positive scale). ``scope``: the
    unstructured mask chosen over each whole block (``matrix``, the paper's) or per output channel (``row``).
    """
    check_scope(scope)
    fan_in = w.shape[0]
    if hessian.shape != (fan_in, fan_in):
        raise RhojaxError(f"SparseGPT Hessian has shape {hessian.shape}; the weight needs {(fan_in, fan_in)}")
    if nm is not None:
        n, m = check_nm(nm, fan_in)
        if sparsity is not None and abs(sparsity - (1 - n / m)) > 1e-9:
            raise RhojaxError(f"sparsity {sparsity} contradicts the N:M pattern {n}:{m}")
        if block_size % m:
            raise RhojaxError(f"block_size {block_size} must be a multiple of M={m}")
        sparsity = None
    else:
        if sparsity is None:
            raise RhojaxError("give a sparsity or an N:M pattern")
        check_sparsity(sparsity)
    drops = None
    if sparsity is not None:
        bounds = _block_bounds(fan_in, block_size)
        per_block = 1 if scope == "row" else w.shape[1]
        drops = jnp.asarray([round(sparsity * (stop - start) * per_block) for start, stop in bounds], jnp.int32)
    return _sparsegpt(w, hessian, drops, block_size, damp, None if nm is None else tuple(nm),
                      per_row=nm is None and scope == "row")
