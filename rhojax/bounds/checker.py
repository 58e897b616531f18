"""The bound checker: every applicable twin on the real model's matrices and calibration activations.

A *configuration* is one site ``(layer, kind)`` compressed at one :class:`~rhojax.bounds.levels.Level`
by ``rhojax.compress``. For each configuration the checker evaluates, in float64:

- every site: ``weight_perturbation``, ``relative_weight_perturbation``, ``weight_input_error``
  (input ``X' =`` 8-bit per-token RTN of ``X``) and ``additive_composition`` (stage 2: 8-bit RTN
  of the compressed matrix);
- MLP chains into ``down`` with both matrices compressed at the same level: ``two_matrix_chain``
  for ``X W_up W_down`` and ``lipschitz_activation_chain`` for ``act(X W_gate) W_down`` (llama;
  GPT-2: ``v -> o`` linear, ``up -> down`` through GELU);
- ``o``: ``residual_block`` for ``u -> u + u W_o'`` (``L = ||W_o'||_F``, ``u = X``, ``v = X'``) and
  ``product_propagation`` of the injected error ``X (W_o' - W_o)`` through the linear residual maps
  ``I + W_o`` of the next ``chain_depth`` layers, gains = exact spectral norms;
- ``magnitude_pruning_frobenius`` for the mask-only pruners (magnitude, Wanda), ``rtn_rounding_bound``
  and ``rtn_frobenius_bound`` for RTN, ``rtn_frobenius_bound`` in the rotated basis for rotated RTN.

``geometric_series_bound`` and ``lyapunov_monotone`` are scalar recurrences over layers whose
hypotheses (a contracting map, beta <= alpha) no single real matrix provides; they are checked by
their property tests only. Activations ``X`` are the projection inputs of the calibration windows
(``rhojax.compress.calibration.projection_inputs``), ``check_tokens`` rows of them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.bounds import twins
from rhojax.bounds.activations import ACTIVATIONS, FAMILY_ACTIVATION
from rhojax.bounds.levels import Level
from rhojax.compress import INPUT_OF, NEEDS_HESSIAN, CalibrationStats, compress_matrix
from rhojax.compress.calibration import MatrixStats, projection_inputs
from rhojax.compress.quantize import random_orthogonal, rotate_inputs
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import default_positions, forward

#: Tolerance for bounds that the float32 compression arithmetic itself must satisfy (RTN grids).
FLOAT32_ROUNDOFF = 1e-6
#: Every theorem the checker evaluates on real weights.
CHECKED_THEOREMS = (
    "weight_perturbation", "relative_weight_perturbation", "weight_input_error", "additive_composition",
    "two_matrix_chain", "lipschitz_activation_chain", "residual_block", "product_propagation",
    "magnitude_pruning_frobenius", "rtn_rounding_bound", "rtn_frobenius_bound",
)
DEFAULT_TWINS: Mapping[str, Callable] = {name: getattr(twins, name) for name in CHECKED_THEOREMS}
#: (first, second, activation or None) matrix chains per family, both inside one block.
CHAINS = {
    "llama": (("up", "down", None), ("gate", "down", "silu")),
    "gpt2": (("v", "o", None), ("up", "down", FAMILY_ACTIVATION["gpt2"])),
    "gemma3": (("up", "down", None), ("gate", "down", FAMILY_ACTIVATION["gemma3"])),
}


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One theorem on one site at one level, over all layers: arrays of shape (L,)."""

    theorem: str
    kind: str
    bound: np.ndarray
    actual: np.ndarray
    holds: np.ndarray


@dataclasses.dataclass(frozen=True)
class LevelResult:
    """Everything evaluated at one level: ``configurations`` compressed sites and their evaluations."""

    level: Level
    configurations: int
    evaluations: list[Evaluation]

    def rows(self) -> list[dict]:
        """JSON-ready rows ``{level, method, layer, kind, theorem, bound, actual, holds}``."""
        return [
            {"level": self.level.label, "method": self.level.method, "layer": layer, "kind": e.kind,
             "theorem": e.theorem, "bound": float(e.bound[layer]), "actual": float(e.actual[layer]),
             "holds": bool(e.holds[layer])}
            for e in self.evaluations for layer in range(len(e.bound))
        ]


@functools.partial(jax.jit, static_argnames=("config",))
def _projection_inputs(config: ModelConfig, params: dict, tokens: jax.Array) -> dict[str, jax.Array]:
    positions = default_positions(tokens)
    _, hidden = forward(config, params, tokens, return_hidden=True)

    def step(_, layer):
        p, h = layer
        return None, projection_inputs(config, p, h, positions)

    return jax.lax.scan(step, None, (params["blocks"], hidden[:-1]))[1]


def site_inputs(config: ModelConfig, params: dict, windows: np.ndarray, check_tokens: int) -> dict[str, np.ndarray]:
    """``group -> (L, check_tokens, in)`` projection inputs, tokens taken evenly over the windows."""
    inputs = _projection_inputs(config, params, jnp.asarray(windows, jnp.int32))
    flat = {g: np.asarray(x).reshape(x.shape[0], -1, x.shape[-1]) for g, x in inputs.items()}
    total = next(iter(flat.values())).shape[1]
    rows = np.unique(np.linspace(0, total - 1, min(check_tokens, total)).round().astype(int))
    return {g: x[:, rows] for g, x in flat.items()}


def activation_rtn8(x: jax.Array) -> jax.Array:
    """8-bit symmetric RTN of each token's activation vector (rows of ``x`` (n, in))."""
    return compress_matrix("rtn", x.T, 8).T


def matrix_checks(fns: Mapping[str, Callable], w, w2, w3, x, xq) -> dict[str, twins.BoundCheck]:
    return {
        "weight_perturbation": fns["weight_perturbation"](w, w2, x),
        "relative_weight_perturbation": fns["relative_weight_perturbation"](w, w2, x),
        "weight_input_error": fns["weight_input_error"](w, w2, x, xq),
        "additive_composition": fns["additive_composition"](w, w2, w3, x),
    }


def _chain_check(fns: Mapping[str, Callable], activation: str | None, a, a2, b, b2, x) -> twins.BoundCheck:
    if activation is None:
        return fns["two_matrix_chain"](a, a2, b, b2, x)
    fn, lipschitz = ACTIVATIONS[activation]
    return fns["lipschitz_activation_chain"](a, a2, b, b2, x, fn, lipschitz)


def _residual_checks(fns: Mapping[str, Callable], w, w2, x, xq, maps, gains) -> dict[str, twins.BoundCheck]:
    branch, lipschitz = twins.linear_branch(w2)
    return {
        "residual_block": fns["residual_block"](branch, lipschitz, x, xq),
        "product_propagation": fns["product_propagation"](
            x @ (w2 - w), [maps[j] for j in range(maps.shape[0])], gains=[gains[j] for j in range(gains.shape[0])]
        ),
    }


def residual_chain_maps(w_o: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """For each layer l: the maps ``I + W_o[l+1..l+depth]`` (L, depth, D, D), identity past the last
    layer, and their exact spectral norms (L, depth)."""
    num_layers, d, _ = w_o.shape
    eye = np.eye(d)
    residual = eye[None] + w_o.astype(np.float64)
    norms = np.linalg.norm(residual, 2, axis=(1, 2))
    maps = np.stack([np.stack([residual[l + j] if l + j < num_layers else eye for j in range(1, depth + 1)])
                     for l in range(num_layers)])
    gains = np.array([[norms[l + j] if l + j < num_layers else 1.0 for j in range(1, depth + 1)]
                      for l in range(num_layers)])
    return maps, gains


def _compress_stack(level: Level, w: jax.Array, stats: CalibrationStats, kind: str, keys: jax.Array) -> jax.Array:
    """``level`` applied to every layer's matrix (vmapped over layers)."""
    group = INPUT_OF[kind]
    norms = jnp.sqrt(jnp.asarray(stats.sq_norms[group]))
    if level.method in NEEDS_HESSIAN:
        hessians = jnp.asarray(stats.hessians[group])
        return jax.vmap(lambda w, n, h, k: level.compress(w, MatrixStats(n, h), k))(w, norms, hessians, keys)
    return jax.vmap(lambda w, n, k: level.compress(w, MatrixStats(n), k))(w, norms, keys)


def _rotations(level: Level, w: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array] | None:
    """For rotated RTN: each layer's rotation ``Q`` (the one ``compress_matrix`` draws from the same key)
    and the rotated weight ``Q^T W`` (float32, as the operator computes them)."""
    if level.method != "rotated_rtn":
        return None
    rotations = jax.vmap(lambda k: random_orthogonal(k, w.shape[1]))(keys)
    return rotations, jax.vmap(rotate_inputs)(w, rotations)


def _compression_checks(
    fns: Mapping[str, Callable], method: str, bits: int, group: int | None, w: jax.Array, w2: jax.Array,
    rotated: tuple | None,
) -> dict[str, twins.BoundCheck]:
    """The operator-specific twins that apply to ``method``, vmapped over layers (float64 inputs)."""
    if method in ("magnitude", "wanda"):
        return {"magnitude_pruning_frobenius": jax.vmap(fns["magnitude_pruning_frobenius"])(w, w2)}
    if method == "rtn":
        return {name: jax.vmap(lambda a, b, name=name: fns[name](a, b, bits, group))(w, w2)
                for name in ("rtn_rounding_bound", "rtn_frobenius_bound")}
    if method == "rotated_rtn":  # ||W - W'||_F = ||Q^T W - Q^T W'||_F: the bound of RTN in the rotated basis
        rotations, rotated_w = rotated
        quantized = jnp.einsum("lji,ljk->lik", rotations, w2)
        check = jax.vmap(lambda a, b: fns["rtn_frobenius_bound"](a, b, bits, group))(rotated_w, quantized)
        return {"rtn_frobenius_bound": check}
    return {}


def _evaluation(theorem: str, kind: str, check: twins.BoundCheck, roundoff: float) -> Evaluation:
    check = twins.BoundCheck(*(np.atleast_1d(np.asarray(v, np.float64)) for v in (check.bound, check.actual,
                                                                                 check.scale)))
    return Evaluation(theorem, kind, check.bound, check.actual, check.holds(roundoff=roundoff))


def check_bounds(
    config: ModelConfig,
    params: dict,
    inputs: Mapping[str, np.ndarray],
    stats: CalibrationStats,
    levels: Sequence[Level],
    *,
    key: jax.Array,
    chain_depth: int = 2,
    fns: Mapping[str, Callable] = DEFAULT_TWINS,
) -> Iterator[LevelResult]:
    """Evaluate every applicable twin at every site for each level in turn (yields per level).

    ``fns`` maps theorem names to twin implementations (replace one to test the checker itself).
    """
    blocks = params["blocks"]
    kinds = config.site_kinds
    num_layers = config.num_layers
    keys = {k: jax.vmap(lambda l, i=i: jax.random.fold_in(jax.random.fold_in(key, l), i))(jnp.arange(num_layers))
            for i, k in enumerate(kinds)}
    xq = {g: jax.vmap(activation_rtn8)(jnp.asarray(x)) for g, x in inputs.items()}
    maps, gains = residual_chain_maps(np.asarray(blocks["o"]["w"]), chain_depth)
    with jax.enable_x64(True):
        x64 = {g: jnp.asarray(x, jnp.float64) for g, x in inputs.items()}
        xq64 = {g: jnp.asarray(x, jnp.float64) for g, x in xq.items()}
        maps, gains = jnp.asarray(maps), jnp.asarray(gains)
    matrix_fn = jax.jit(jax.vmap(lambda *a: matrix_checks(fns, *a)))
    chain_fns = {act: jax.jit(jax.vmap(lambda *a, act=act: _chain_check(fns, act, *a)))
                 for act in {c[2] for c in CHAINS[config.family]}}
    residual_fn = jax.jit(jax.vmap(lambda *a: _residual_checks(fns, *a)))
    square_o = config.site_shape("o")[0] == config.site_shape("o")[1]
    chained = {k for chain in CHAINS[config.family] for k in chain[:2]}

    @functools.cache
    def compression_fn(method: str, bits: int, group: int | None) -> Callable:
        return jax.jit(functools.partial(_compression_checks, fns, method, bits, group))

    for level in levels:
        compressed: dict[str, jax.Array] = {}
        evaluations: list[Evaluation] = []
        configurations = 0
        for kind in kinds:
            if not level.applies_to(config.site_shape(kind)):
                continue
            w2 = _compress_stack(level, blocks[kind]["w"], stats, kind, keys[kind])
            w3 = jax.vmap(lambda w: compress_matrix("rtn", w, 8))(w2)
            rotated = _rotations(level, blocks[kind]["w"], keys[kind])
            if kind in chained:
                compressed[kind] = w2
            configurations += num_layers
            group = INPUT_OF[kind]
            with jax.enable_x64(True):  # float64 copies live for one kind at a time
                w, w2, w3 = (jnp.asarray(a, jnp.float64) for a in (blocks[kind]["w"], w2, w3))
                checks = matrix_fn(w, w2, w3, x64[group], xq64[group])
                if kind == "o" and square_o:
                    checks.update(residual_fn(w, w2, x64[group], xq64[group], maps, gains))
                evaluations += [_evaluation(t, kind, c, twins.ROUNDOFF) for t, c in checks.items()]
                if rotated is not None:
                    rotated = tuple(jnp.asarray(a, jnp.float64) for a in rotated)
                checks = compression_fn(level.method, int(level.value or 0), level.group_size)(w, w2, rotated)
                evaluations += [_evaluation(t, kind, c, FLOAT32_ROUNDOFF) for t, c in checks.items()]
        for first, second, activation in CHAINS[config.family]:
            if first in compressed and second in compressed:
                with jax.enable_x64(True):
                    a, a2, b, b2 = (jnp.asarray(m, jnp.float64) for m in (
                        blocks[first]["w"], compressed[first], blocks[second]["w"], compressed[second]))
                    check = chain_fns[activation](a, a2, b, b2, x64[INPUT_OF[first]])
                    theorem = "two_matrix_chain" if activation is None else "lipschitz_activation_chain"
                    evaluations.append(_evaluation(theorem, first, check, twins.ROUNDOFF))
        yield LevelResult(level, configurations, evaluations)
