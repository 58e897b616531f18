"""Compression operators: pure functions of a weight matrix ``w`` (in, out) and its input statistics.

:func:`compress_matrix` is the one entry point shared by sweeps, bounds and allocation. ``level``
means, per method:

============== ============================================== ===========================
method         operator                                       level
============== ============================================== ===========================
magnitude      smallest ``|W|`` over the matrix               sparsity in [0, 1]
magnitude_row  smallest ``|W|`` per output channel            sparsity
wanda          ``|W_ij| ||X_i||`` per output channel          sparsity (needs input_norm)
sparsegpt      OBS pruning with weight updates                sparsity (needs hessian)
sparsegpt_row  the same, the mask chosen per output channel   sparsity (needs hessian)
lowrank        truncated SVD                                  rank (integer)
lowrank_aware  activation-aware SVD, min ``||X W - X W'||``   rank (needs hessian)
rtn            symmetric round-to-nearest per channel/group   bits (integer)
rotated_rtn    RTN after a random orthogonal rotation         bits (needs key)
============== ============================================== ===========================

``nm=(n, m)`` selects N:M sparsity for the pruning methods (then ``level`` may be None);
``group_size`` selects per-group quantization.

The package itself is callable: ``rhojax.compress(w, "wanda", 0.5, input_norm=n)`` is :func:`compress`,
the one-matrix entry point of the public API. Every operator is a function of ``jax.Array`` that works
under ``jax.jit`` and ``jax.vmap`` (over a stack of matrices) as long as ``method``, ``level``, ``nm`` and
``group_size`` are static Python values.
"""

from __future__ import annotations

import sys
import types

import chex
import jax

from rhojax.checks import assert_finite
from rhojax.compress.calibration import INPUT_OF, CalibrationStats, MatrixStats, calibration_stats
from rhojax.compress.lowrank import activation_aware_svd, truncated_svd
from rhojax.compress.magnitude import magnitude_prune
from rhojax.compress.quantize import rotated_rtn_quantize, rtn_quantize
from rhojax.compress.sparsegpt import sparsegpt_prune
from rhojax.compress.wanda import wanda_prune
from rhojax.errors import RhojaxError

METHODS: tuple[str, ...] = (
    "magnitude", "magnitude_row", "wanda", "sparsegpt", "sparsegpt_row", "lowrank", "lowrank_aware", "rtn",
    "rotated_rtn",
)
PRUNING_METHODS = ("magnitude", "magnitude_row", "wanda", "sparsegpt", "sparsegpt_row")
#: Methods that need calibration statistics, and which ones.
NEEDS_INPUT_NORM = ("wanda",)
NEEDS_HESSIAN = ("sparsegpt", "sparsegpt_row", "lowrank_aware")


def _need(value, what: str, method: str):
    if value is None:
        raise RhojaxError(f"method {method!r} needs {what}; compute it with calibration_stats")
    return value


def compress_matrix(
    method: str,
    w: jax.Array,
    level: float | None,
    stats: MatrixStats | None = None,
    key: jax.Array | None = None,
    *,
    nm: tuple[int, int] | None = None,
    group_size: int | None = None,
) -> jax.Array:
    """Compress ``w`` (in, out) with ``method`` at ``level`` (see the module table); same shape and dtype."""
    chex.assert_rank(w, 2)
    out = _compress(method, w, level, stats or MatrixStats(), key, nm, group_size)
    chex.assert_equal_shape([w, out])
    chex.assert_trees_all_equal_dtypes(w, out)
    assert_finite(out)
    return out


def _compress(method, w, level, stats, key, nm, group_size):
    if method in ("magnitude", "magnitude_row"):
        return magnitude_prune(w, level, scope="matrix" if method == "magnitude" else "row", nm=nm)
    if method == "wanda":
        return wanda_prune(w, _need(stats.input_norm, "input norms", method), level, nm=nm)
    if method in ("sparsegpt", "sparsegpt_row"):
        return sparsegpt_prune(w, _need(stats.hessian, "a Hessian", method), level, nm=nm,
                               scope="matrix" if method == "sparsegpt" else "row")
    if method == "lowrank":
        return truncated_svd(w, int(level))
    if method == "lowrank_aware":
        return activation_aware_svd(w, _need(stats.hessian, "a Hessian", method), int(level))
    if method == "rtn":
        return rtn_quantize(w, int(level), group_size=group_size)
    if method == "rotated_rtn":
        return rotated_rtn_quantize(w, int(level), _need(key, "a PRNG key", method), group_size=group_size)
    raise RhojaxError(f"unknown compression method {method!r}; choose from {', '.join(METHODS)}")


def compress(
    w: jax.Array,
    method: str,
    level: float | None = None,
    *,
    input_norm: jax.Array | None = None,
    hessian: jax.Array | None = None,
    key: jax.Array | None = None,
    nm: tuple[int, int] | None = None,
    group_size: int | None = None,
) -> jax.Array:
    """Compress one matrix ``w`` (in, out) with ``method`` at ``level``; same shape and dtype.

    ``method`` is one of :data:`METHODS` (see the module table for what ``level`` means). Wanda needs
    ``input_norm`` (in,) = ``||X_i||_2`` over calibration tokens, SparseGPT and ``lowrank_aware`` need
    ``hessian`` (in, in) = ``X^T X`` (both from :func:`calibration_stats`, e.g.
    ``stats.site(layer, kind)``), ``rotated_rtn`` a PRNG ``key``.
    """
    if method not in METHODS:
        raise RhojaxError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    return compress_matrix(method, w, level, MatrixStats(input_norm, hessian), key, nm=nm, group_size=group_size)


class _CallableModule(types.ModuleType):
    """This package's module type: calling ``rhojax.compress(...)`` calls :func:`compress`."""

    def __call__(self, *args, **kwargs) -> jax.Array:
        return compress(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "compress",
    "INPUT_OF",
    "METHODS",
    "NEEDS_HESSIAN",
    "NEEDS_INPUT_NORM",
    "PRUNING_METHODS",
    "CalibrationStats",
    "MatrixStats",
    "activation_aware_svd",
    "calibration_stats",
    "compress_matrix",
    "magnitude_prune",
    "rotated_rtn_quantize",
    "rtn_quantize",
    "sparsegpt_prune",
    "truncated_svd",
    "wanda_prune",
]
