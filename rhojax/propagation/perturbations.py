"""Perturbation directions and their scaling to a relative magnitude ``eps``.

Directions are standard Gaussians drawn from ``fold_in(fold_in(key, layer), sample)``, so a
sample's direction depends only on the key, the layer and the sample index (the same direction is
reused for every ``eps`` and for the linearised limit).

Two scalings (docs/definitions.md#attention-sinks-aggregate-and-token-wise-statistics):

- *aggregate*: ``e = eps * g * ||h||_F / ||g||_F``, norms over every evaluated token (BOS included);
- *token-wise*: ``e_i = eps * g_i * ||h_i|| / ||g_i||`` for every token ``i`` separately.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _wide(x: Array) -> Array:
    """``x`` in float32 at least (bfloat16 statistics are accumulated in float32)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def frobenius(x: Array) -> Array:
    """Frobenius norm over the last three axes (windows, tokens, width)."""
    return jnp.sqrt(jnp.sum(jnp.square(_wide(x)), axis=(-3, -2, -1)))


def token_norms(x: Array) -> Array:
    """Euclidean norm of every token vector: shape ``x.shape[:-1]``."""
    return jnp.sqrt(jnp.sum(jnp.square(_wide(x)), axis=-1))


def directions(key: Array, layer: int | Array, samples: int, shape: tuple[int, ...]) -> Array:
    """``(samples, *shape)`` Gaussian directions; sample k uses ``fold_in(fold_in(key, layer), k)``."""
    layer_key = jax.random.fold_in(key, layer)
    keys = jax.vmap(lambda k: jax.random.fold_in(layer_key, k))(jnp.arange(samples))
    return jax.vmap(lambda k: jax.random.normal(k, shape, jnp.float32))(keys)


def scale_aggregate(g: Array, h: Array, eps: float | Array) -> Array:
    """Scale directions ``g`` (K, N, T, D) so that ``||e||_F = eps * ||h||_F`` for each sample."""
    factor = eps * frobenius(h) / frobenius(g)
    return g * factor[:, None, None, None]


def scale_tokenwise(g: Array, h: Array, eps: float | Array) -> Array:
    """Scale directions ``g`` (K, N, T, D) so that ``||e_i|| = eps * ||h_i||`` for every token ``i``."""
    factor = eps * token_norms(h) / token_norms(g)
    return g * factor[..., None]


def sink_mask(seq_len: int, sink_positions: tuple[int, ...] = (0,)) -> Array:
    """Boolean ``(T,)`` mask of attention-sink positions (default: the BOS position 0)."""
    return jnp.zeros((seq_len,), bool).at[jnp.asarray(sink_positions, jnp.int32)].set(True)
