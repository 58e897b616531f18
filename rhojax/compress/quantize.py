"""Symmetric round-to-nearest (RTN) quantization, plain and after a random orthogonal rotation.

A b-bit symmetric grid has step ``s = max|w| / (2^(b-1) - 1)`` over each quantization group:
a whole output channel ``w[:, j]`` (default) or ``group_size`` consecutive inputs of it.
``q(w) = s * clip(round(w / s), -(2^(b-1) - 1), 2^(b-1) - 1)``, so ``|w - q(w)| <= s / 2``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rhojax.errors import RhojaxError


def _groups(w: jax.Array, group_size: int | None) -> jax.Array:
    """``w`` (in, out) as (groups, group_size, out): statistics are taken over axis 1."""
    fan_in = w.shape[0]
    size = fan_in if group_size is None else int(group_size)
    if size < 1 or fan_in % size:
        raise RhojaxError(f"group_size {group_size} must divide the input size {fan_in}")
    return w.reshape(fan_in // size, size, w.shape[1])


def quantization_step(w: jax.Array, bits: int, *, group_size: int | None = None) -> jax.Array:
    """The step ``s`` of every entry's group, broadcast to ``w.shape``."""
    if int(bits) < 2:
        raise RhojaxError(f"{bits}-bit symmetric quantization needs at least 2 bits")
    grouped = _groups(w.astype(jnp.float32), group_size)
    step = jnp.max(jnp.abs(grouped), axis=1, keepdims=True) / (2 ** (int(bits) - 1) - 1)
    return jnp.broadcast_to(step, grouped.shape).reshape(w.shape)


def rtn_quantize(w: jax.Array, bits: int, *, group_size: int | None = None) -> jax.Array:
    """Quantize ``w`` (in, out) to ``bits`` bits per output channel or group; returns dequantized w."""
    step = quantization_step(w, bits, group_size=group_size)
    qmax = 2 ** (int(bits) - 1) - 1
    safe = jnp.where(step > 0, step, 1.0)
    q = jnp.clip(jnp.round(w.astype(jnp.float32) / safe), -qmax, qmax) * safe
    return jnp.where(step > 0, q, 0.0).astype(w.dtype)


def random_orthogonal(key: jax.Array, n: int) -> jax.Array:
    """A Haar-random ``n x n`` orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), dtype=jnp.float32))
    return q * jnp.sign(jnp.diag(r))[None, :]


def rotate_inputs(w: jax.Array, rotation: jax.Array) -> jax.Array:
    """``Q^T W``: the weight seen by rotated inputs ``x Q``, so ``(x Q)(Q^T W) = x W``."""
    return rotation.T @ w.astype(jnp.float32)


def rotated_rtn_quantize(
    w: jax.Array, bits: int, key: jax.Array, *, group_size: int | None = None
) -> jax.Array:
    """RTN in a random orthogonal basis: ``Q q(Q^T W)``, returned in the ORIGINAL basis.

    The rotation spreads outlier entries over all inputs before rounding; ``W - result`` is the
    error the rotated model actually makes on un-rotated inputs.
    """
    rotation = random_orthogonal(key, w.shape[0])
    return (rotation @ rtn_quantize(rotate_inputs(w, rotation), bits, group_size=group_size)).astype(w.dtype)
