"""Pruning masks from importance scores. A mask is boolean, ``True`` where a weight is KEPT.

Weights are ``(in, out)``: an output row (output channel) is a column ``w[:, j]``, and N:M groups
run along the input axis (``m`` consecutive inputs of one output channel).
Counts are exact: ``round(sparsity * n)`` entries are dropped in every compared set, ties broken
by position, so a pruned matrix hits the requested sparsity exactly.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp

from rhojax.errors import RhojaxError

Scope = Literal["matrix", "row"]


def check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity <= 1.0:
        raise RhojaxError(f"sparsity {sparsity} is outside [0, 1]")


def check_nm(nm: tuple[int, int], fan_in: int) -> tuple[int, int]:
    n, m = nm
    if not 0 <= n <= m or m < 1:
        raise RhojaxError(f"N:M pattern {n}:{m} needs 0 <= N <= M and M >= 1")
    if fan_in % m:
        raise RhojaxError(f"N:M pattern {n}:{m} needs the input size {fan_in} to be a multiple of {m}")
    return n, m


def keep_largest(scores: jax.Array, num_drop: int | jax.Array, axis: int) -> jax.Array:
    """Keep all but the ``num_drop`` smallest scores along ``axis`` (exact count, ties by position).

    Equal to dropping the first ``num_drop`` entries of a stable ascending argsort along ``axis``
    (``-0.0`` ties with ``0.0``). ``num_drop`` may be traced, so one compiled program serves every
    sparsity. Float scores of at most 32 bits take :func:`_drop_by_threshold` (a 32-step search for the
    ``num_drop``-th smallest value: no sort, several times faster on a CPU); others an argsort.
    """
    if jnp.dtype(scores.dtype) in (jnp.float16, jnp.bfloat16, jnp.float32):
        return ~_drop_by_threshold(scores.astype(jnp.float32), num_drop, axis)
    order = jnp.argsort(scores, axis=axis, stable=True)
    shape = [1] * scores.ndim
    shape[axis] = scores.shape[axis]
    kept = (jnp.arange(scores.shape[axis]) >= num_drop).reshape(shape)
    return jnp.put_along_axis(jnp.zeros(scores.shape, bool), order, jnp.broadcast_to(kept, scores.shape), axis=axis,
                              inplace=False)


def _ordered_keys(scores: jax.Array) -> jax.Array:
    """uint32 keys in the order of the float32 ``scores``: sign bit flipped for ``>= 0``, all bits for ``< 0``."""
    scores = jnp.where(scores == 0, jnp.float32(0), scores)  # -0.0 ties with 0.0, as in a sort
    bits = jax.lax.bitcast_convert_type(scores, jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(1 << 31))


@functools.partial(jax.jit, static_argnames="axis")
def _drop_by_threshold(scores: jax.Array, num_drop: int | jax.Array, axis: int) -> jax.Array:
    """The dropped entries (True) of :func:`keep_largest`, for float32 scores.

    With ordered keys ``k`` the ``num_drop``-th smallest key ``v`` along ``axis`` is the largest ``v`` with
    ``#{k < v} < num_drop``, found bit by bit from the top (32 counting passes). Entries below ``v`` are
    dropped, and of the entries equal to ``v`` the first ``num_drop - #{k < v}`` by position.
    """
    keys = _ordered_keys(scores)
    num_drop = jnp.asarray(num_drop, jnp.int32)

    def refine(bit, v):
        trial = v | (jnp.uint32(1) << (31 - bit).astype(jnp.uint32))
        below = jnp.sum(keys < trial, axis=axis, keepdims=True, dtype=jnp.int32)
        return jnp.where(below < num_drop, trial, v)

    start = jnp.zeros([1 if a == axis % keys.ndim else n for a, n in enumerate(keys.shape)], jnp.uint32)
    v = jax.lax.fori_loop(0, 32, refine, start)
    ties = keys == v
    need = num_drop - jnp.sum(keys < v, axis=axis, keepdims=True, dtype=jnp.int32)
    dropped = (keys < v) | (ties & (jnp.cumsum(ties, axis=axis, dtype=jnp.int32) <= need))
    return dropped & (num_drop > 0)


def check_scope(scope: str) -> None:
    """Reject a comparison group other than ``matrix`` (every entry) or ``row`` (each output channel)."""
    if scope not in ("matrix", "row"):
        raise RhojaxError(f"pruning scope {scope!r}: choose 'matrix' or 'row'")


def unstructured_mask(scores: jax.Array, sparsity: float, scope: Scope = "matrix") -> jax.Array:
    """Drop the lowest ``sparsity`` fraction of scores over the whole matrix or within each output row."""
    check_sparsity(sparsity)
    check_scope(scope)
    if scope == "matrix":
        drop = round(sparsity * scores.size)
        return keep_largest(scores.reshape(-1), drop, axis=0).reshape(scores.shape)
    return keep_largest(scores, round(sparsity * scores.shape[0]), axis=0)


def nm_mask(scores: jax.Array, nm: tuple[int, int]) -> jax.Array:
    """Keep the ``n`` largest scores of every group of ``m`` consecutive inputs in each output row."""
    fan_in, fan_out = scores.shape
    n, m = check_nm(nm, fan_in)
    grouped = scores.reshape(fan_in // m, m, fan_out)
    return keep_largest(grouped, m - n, axis=1).reshape(fan_in, fan_out)


def score_mask(
    scores: jax.Array, sparsity: float | None, *, scope: Scope = "matrix", nm: tuple[int, int] | None = None
) -> jax.Array:
    """Unstructured mask at ``sparsity`` or, with ``nm``, the N:M mask (then ``sparsity`` must be
    ``None`` or equal to ``1 - n/m``)."""
    if nm is None:
        if sparsity is None:
            raise RhojaxError("give a sparsity or an N:M pattern")
        return unstructured_mask(scores, sparsity, scope)
    if sparsity is not None and abs(sparsity - (1 - nm[0] / nm[1])) > 1e-9:
        raise RhojaxError(f"sparsity {sparsity} contradicts the N:M pattern {nm[0]}:{nm[1]}")
    return nm_mask(scores, nm)
