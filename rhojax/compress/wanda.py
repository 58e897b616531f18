"""Wanda (Sun et al. 2023): prune by ``|W_ij| * ||X_j||_2`` within each output row."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rhojax.compress.masks import score_mask
from rhojax.errors import RhojaxError


def wanda_scores(w: jax.Array, input_norm: jax.Array) -> jax.Array:
    """``S_ij = |W_ij| * ||X_i||_2`` for ``w`` (in, out) and the input-feature norms (in,)."""
    if input_norm.shape != (w.shape[0],):
        raise RhojaxError(f"Wanda input norms: shape {input_norm.shape}, the weight has {w.shape[0]} inputs")
    return jnp.abs(w) * input_norm[:, None].astype(w.dtype)


def wanda_prune(
    w: jax.Array, input_norm: jax.Array, sparsity: float | None, *, nm: tuple[int, int] | None = None
) -> jax.Array:
    """Zero the ``sparsity`` fraction of lowest Wanda scores of every output channel ``w[:, j]``.

    ``input_norm`` (in,) is ``||X_i||_2`` of input feature i over the calibration tokens.
    """
    mask = score_mask(wanda_scores(w, input_norm), sparsity, scope="row", nm=nm)
    return jnp.where(mask, w, 0).astype(w.dtype)
