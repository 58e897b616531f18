"""Numeric twins of the Lean theorems in ``lean/RhojaxBounds``.

Each twin takes concrete arrays, evaluates both sides of one theorem and returns a
:class:`BoundCheck` ``(bound, actual, scale)``. The matrix and propagation twins work on numpy
arrays and on JAX arrays alike (so the checker can ``jit`` and ``vmap`` them, in float64 under
``jax.enable_x64``), except the two recurrences over layers (geometric series, Lyapunov), which
are numpy only. Property tests use float64 numpy.

Conventions follow rhojax's storage: activations ``X`` are (tokens, in) matrices, weights ``W``
are (in, out) and act as ``X @ W``; the vector norm is the Frobenius norm over all tokens, and
the map norm ``op`` is the spectral norm (``"spectral"``) or the Frobenius norm (``"fro"``), both
valid since ``||X W||_F <= ||X||_F ||W||_2 <= ||X||_F ||W||_F``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

OpNorm = Literal["fro", "spectral"]

#: A bound holds when ``actual <= bound * (1 + RTOL) + ROUNDOFF * scale``: float64 round-off only,
#: where ``scale`` is the size of the terms whose difference ``actual`` measures.
RTOL = 1e-9
ROUNDOFF = 1e-12


@dataclasses.dataclass(frozen=True)
class BoundCheck:
    """One evaluated inequality ``actual <= bound``; ``tightness = bound / actual`` (>= 1 when it holds).

    ``scale`` is the magnitude of the terms subtracted to compute ``actual`` (its round-off size).
    """

    bound: float
    actual: float
    scale: float = 0.0

    def holds(self, rtol: float = RTOL, roundoff: float = ROUNDOFF) -> np.ndarray:
        """Whether ``actual <= bound (1 + rtol) + roundoff * scale`` (elementwise for batched checks)."""
        return np.asarray(self.actual <= self.bound * (1 + rtol) + roundoff * self.scale)

    @property
    def tightness(self) -> np.ndarray:
        """``bound / actual`` (inf where ``actual = 0``)."""
        bound, actual = np.asarray(self.bound, np.float64), np.asarray(self.actual, np.float64)
        return np.divide(bound, actual, out=np.full(np.broadcast(bound, actual).shape, np.inf), where=actual > 0)


jax.tree_util.register_dataclass(BoundCheck, data_fields=["bound", "actual", "scale"], meta_fields=[])


def array_module(*arrays):
    """numpy for numpy inputs, jax.numpy when any input is a JAX array (or tracer)."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _scale(*terms: np.ndarray) -> float:
    """Round-off size of an expression built from ``terms``: the sum of their norms."""
    return sum(fro(t) for t in terms)


def fro(a: np.ndarray) -> float:
    """Frobenius norm ``sqrt(sum a_ij^2)``."""
    xp = array_module(a)
    return xp.sqrt(xp.sum(a * a))


def op_norm(w: np.ndarray, kind: OpNorm = "fro") -> float:
    """``||W||_F`` or the spectral norm ``||W||_2 = sigma_max(W)``."""
    return fro(w) if kind == "fro" else array_module(w).linalg.norm(w, 2)


def weight_perturbation(w: np.ndarray, w2: np.ndarray, x: np.ndarray, op: OpNorm = "fro") -> BoundCheck:
    """``||X W' - X W|| <= ||W' - W|| ||X||``."""
    return BoundCheck(op_norm(w2 - w, op) * fro(x), fro(x @ w2 - x @ w), _scale(x @ w2, x @ w))


def relative_weight_perturbation(w: np.ndarray, w2: np.ndarray, x: np.ndarray, op: OpNorm = "fro") -> BoundCheck:
    """With ``delta = ||W' - W|| / ||W||``: ``||X W' - X W|| <= delta (||W|| ||X||)``."""
    norm_w = op_norm(w, op)
    delta = op_norm(w2 - w, op) / norm_w
    return BoundCheck(delta * (norm_w * fro(x)), fro(x @ w2 - x @ w), _scale(x @ w2, x @ w))


def weight_input_error(
    w: np.ndarray, w2: np.ndarray, x: np.ndarray, x2: np.ndarray, op: OpNorm = "fro"
) -> BoundCheck:
    """``||X' W' - X W|| <= ||W'|| ||X' - X|| + ||W' - W|| ||X||``."""
    bound = op_norm(w2, op) * fro(x2 - x) + op_norm(w2 - w, op) * fro(x)
    return BoundCheck(bound, fro(x2 @ w2 - x @ w), _scale(x2 @ w2, x @ w, x2 - x, w2 - w))


def additive_composition(
    w: np.ndarray, w1: np.ndarray, w2: np.ndarray, x: np.ndarray, op: OpNorm = "fro"
) -> BoundCheck:
    """Two stages ``W -> W1 -> W2``: ``||X W2 - X W|| <= (||W2 - W1|| + ||W1 - W||) ||X||``."""
    bound = (op_norm(w2 - w1, op) + op_norm(w1 - w, op)) * fro(x)
    return BoundCheck(bound, fro(x @ w2 - x @ w), _scale(x @ w2, x @ w))


def two_matrix_chain(
    a: np.ndarray, a2: np.ndarray, b: np.ndarray, b2: np.ndarray, x: np.ndarray, op: OpNorm = "fro"
) -> BoundCheck:
    """``||X A' B' - X A B|| <= ||B'|| (||A' - A|| ||X||) + ||B' - B|| (||A|| ||X||)``."""
    nx = fro(x)
    bound = op_norm(b2, op) * (op_norm(a2 - a, op) * nx) + op_norm(b2 - b, op) * (op_norm(a, op) * nx)
    return BoundCheck(bound, fro(x @ a2 @ b2 - x @ a @ b), _scale(x @ a2 @ b2, x @ a @ b))


def lipschitz_activation_chain(
    a: np.ndarray,
    a2: np.ndarray,
    b: np.ndarray,
    b2: np.ndarray,
    x: np.ndarray,
    activation: Callable[[np.ndarray], np.ndarray],
    lipschitz: float,
    op: OpNorm = "fro",
) -> BoundCheck:
    """For an ``L``-Lipschitz ``sigma``: ``||sigma(X A') B' - sigma(X A) B||
    <= ||B'|| (L ||A' - A|| ||X||) + ||B' - B|| ||sigma(X A)||``."""
    mid = activation(x @ a)
    bound = op_norm(b2, op) * (lipschitz * op_norm(a2 - a, op) * fro(x)) + op_norm(b2 - b, op) * fro(mid)
    out2 = activation(x @ a2) @ b2
    return BoundCheck(bound, fro(out2 - mid @ b), _scale(out2, mid @ b))


def residual_block(
    branch: Callable[[np.ndarray], np.ndarray], lipschitz: float, u: np.ndarray, v: np.ndarray
) -> BoundCheck:
    """For an ``L``-Lipschitz branch ``F``: ``||(U + F U) - (V + F V)|| <= (1 + L) ||U - V||``."""
    out_u, out_v = u + branch(u), v + branch(v)
    return BoundCheck((1 + lipschitz) * fro(u - v), fro(out_u - out_v), _scale(out_u, out_v, u - v))


def linear_branch(w: np.ndarray, op: OpNorm = "fro") -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """The branch ``F(X) = X W`` of a square matrix and its Lipschitz constant ``||W||``."""
    return (lambda x: x @ w), op_norm(w, op)


def product_propagation(
    e0: np.ndarray, maps: Sequence[np.ndarray], op: OpNorm = "fro", gains: Sequence[float] | None = None
) -> BoundCheck:
    """``e_{t+1} = e_t A_t`` with gains ``g_t >= ||A_t||``: ``||e_T|| <= (g_0 ... g_{T-1}) ||e_0||``.

    ``gains`` defaults to ``||A_t||`` (``op``); pass precomputed norms to avoid recomputing them.
    """
    gains = [op_norm(a, op) for a in maps] if gains is None else gains
    e = e0
    gain = 1.0
    for a, g in zip(maps, gains, strict=True):
        e = e @ a
        gain = gain * g
    return BoundCheck(gain * fro(e0), fro(e), gain * fro(e0) * len(maps))


def geometric_series_bound(
    e0: np.ndarray, maps: Sequence[np.ndarray], injections: Sequence[np.ndarray], op: OpNorm = "fro"
) -> BoundCheck:
    """``e_{t+1} = e_t A_t + d_t`` with ``rho = max ||A_t|| < 1`` and ``delta = max ||d_t||``:
    ``max_{T >= 1} ||e_T|| <= c = max(||e_0||, delta / (1 - rho))`` (``rho c + delta <= c``)."""
    rho = max(op_norm(a, op) for a in maps)
    if not rho < 1:
        raise ValueError(f"the geometric-series bound needs contracting maps; max gain is {rho}")
    delta = max(fro(d) for d in injections)
    e, worst = e0, 0.0
    for a, d in zip(maps, injections, strict=True):
        e = e @ a + d
        worst = max(worst, fro(e))
    return BoundCheck(max(fro(e0), delta / (1 - rho)), worst)


def lyapunov_monotone(h0: np.ndarray, h1: np.ndarray, e0: np.ndarray, error_map: np.ndarray) -> BoundCheck:
    """Error ``e_1 = e_0 A`` with gain ``beta = ||A||_2`` and hidden growth ``alpha = ||h_1|| / ||h_0||``.

    If ``beta <= alpha`` then ``V_1 = ||e_1||^2 / ||h_1||^2 <= V_0 = ||e_0||^2 / ||h_0||^2``.
    Returns ``(V_0, V_1)``; raises when ``beta > alpha`` (the theorem does not apply).
    """
    alpha = fro(h1) / fro(h0)
    beta = op_norm(error_map, "spectral")
    if beta > alpha:
        raise ValueError(f"Lyapunov monotonicity needs beta <= alpha; beta = {beta}, alpha = {alpha}")
    e1 = e0 @ error_map
    return BoundCheck((fro(e0) / fro(h0)) ** 2, (fro(e1) / fro(h1)) ** 2)


def magnitude_pruning_frobenius(w: np.ndarray, pruned: np.ndarray) -> BoundCheck:
    """If ``W'`` keeps some entries of ``W`` and zeroes the ``k`` others, each ``|w| <= tau``
    (tau: the largest pruned magnitude, at most the threshold), then ``||W - W'||_F <= sqrt(k) tau``.

    A ``W'`` that changes a kept weight (a weight update) is outside the theorem: the bound is NaN,
    which never holds.
    """
    xp = array_module(w, pruned)
    dropped = pruned != w
    updated = xp.any(dropped & (pruned != 0))
    k = xp.sum(dropped)
    tau = xp.max(xp.where(dropped, xp.abs(w), 0.0))
    return BoundCheck(xp.where(updated, xp.nan, xp.sqrt(k) * tau), fro(w - pruned))


def rtn_step(w: np.ndarray, bits: int, group_size: int | None = None) -> np.ndarray:
    """The b-bit symmetric step ``s = max|w| / (2^(b-1) - 1)`` of every entry's group (an output
    channel ``w[:, j]``, or ``group_size`` consecutive inputs of it), shaped like ``w``."""
    xp = array_module(w)
    fan_in, fan_out = w.shape
    size = fan_in if group_size is None else group_size
    groups = xp.abs(w).reshape(fan_in // size, size, fan_out)
    step = groups.max(axis=1, keepdims=True) / (2 ** (bits - 1) - 1)
    return xp.broadcast_to(step, groups.shape).reshape(w.shape)


def rtn_rounding_bound(w: np.ndarray, quantized: np.ndarray, bits: int, group_size: int | None = None) -> BoundCheck:
    """Every entry: ``|w - q(w)| <= s / 2``. Reported as the worst entry, normalised by its ``s / 2``:
    ``(bound, actual) = (1, max |w - q(w)| / (s / 2))``; an entry with ``s = 0`` must be exact
    (otherwise ``actual = inf``). ``scale`` is the largest ``|w| / (s / 2)`` (round-off size)."""
    xp = array_module(w, quantized)
    half = rtn_step(w, bits, group_size) / 2
    err = xp.abs(w - quantized)
    safe = xp.where(half > 0, half, 1.0)
    ratio = xp.where(half > 0, err / safe, xp.where(err > 0, xp.inf, 0.0))
    return BoundCheck(xp.ones(()), xp.max(ratio), xp.max(xp.abs(w) / safe))


def rtn_frobenius_bound(w: np.ndarray, quantized: np.ndarray, bits: int, group_size: int | None = None) -> BoundCheck:
    """``||W - Q(W)||_F^2 <= sum_ij (s_ij / 2)^2`` (``= n (s/2)^2`` for one step ``s`` over ``n`` entries)."""
    half = rtn_step(w, bits, group_size) / 2
    return BoundCheck(fro(half), fro(w - quantized), fro(w))
