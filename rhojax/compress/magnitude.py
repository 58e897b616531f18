"""Magnitude pruning: drop the weights with the smallest ``|W_ij|``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rhojax.compress.masks import Scope, score_mask


def magnitude_prune(
    w: jax.Array, sparsity: float | None, *, scope: Scope = "matrix", nm: tuple[int, int] | None = None
) -> jax.Array:
    """Zero the ``sparsity`` fraction of smallest-magnitude entries of ``w`` (in, out).

    ``scope="matrix"`` compares all entries, ``"row"`` each output channel ``w[:, j]`` separately;
    ``nm=(n, m)`` keeps ``n`` of every ``m`` consecutive inputs of each output channel.
    """
    return jnp.where(score_mask(jnp.abs(w), sparsity, scope=scope, nm=nm), w, 0).astype(w.dtype)
