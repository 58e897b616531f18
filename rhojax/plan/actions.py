"""The candidate actions of a plan, the plan itself, its cost and how it is applied to a model.

An :class:`Action` says what happens to one block matrix ``(layer, kind)``: keep it ``dense``, ``prune``
it (Wanda or SparseGPT) to an unstructured sparsity, prune it to an ``nm`` pattern (2:4), reduce it to a
``lowrank`` rank (activation-aware SVD) or quantize it with ``rtn`` (symmetric round-to-nearest with one
scale per group). Removing a whole block is the block-level action ``remove``. Its cost in every unit
is :mod:`rhojax.plan.costs`'s; its operator is :func:`rhojax.compress.compress_matrix`'s.

A :class:`Plan` is the removed blocks plus one action per remaining matrix. :func:`apply_plan` builds
the planned model the way Wanda and SparseGPT are applied by their reference code: sequentially, each
layer's statistics measured on the calibration windows run through the already compressed layers.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping

import jax
import numpy as np

from rhojax.allocation.apply import compress_sequentially
from rhojax.checks import assert_finite
from rhojax.compress import NEEDS_HESSIAN, MatrixStats, compress_matrix
from rhojax.compress.lowrank import activation_aware_svd
from rhojax.depth.prune import remove_layers
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.plan.costs import ZERO, Cost, dense_cost, lowrank_cost, nm_cost, rtn_cost, unstructured_cost

OPS: tuple[str, ...] = ("dense", "prune", "nm", "lowrank", "rtn", "remove")
#: Relative damping ``lambda = damp * mean(diag H)`` of the activation-aware SVD's Cholesky factor. SparseGPT's
#: 0.01: calibration sets smaller than a matrix's input size leave ``X^T X`` singular, and the operator's own
#: default (1e-6) then gives a float32 Cholesky factor with NaNs (seen on SmolLM2's down projections).
LOWRANK_DAMP = 0.01
PRUNE_METHODS: tuple[str, ...] = ("wanda", "sparsegpt", "sparsegpt_row")
Site = tuple[int, str]


@dataclasses.dataclass(frozen=True)
class Action:
    """One action on a matrix: ``op`` (see :data:`OPS`), its ``method`` and ``level`` (sparsity, rank or bits),
    ``nm`` for N:M pruning and ``group_size`` for RTN (None: one scale per output channel)."""

    op: str
    method: str = ""
    level: float = 0.0
    nm: tuple[int, int] | None = None
    group_size: int | None = None

    @property
    def name(self) -> str:
        """``dense``, ``remove``, ``sparsegpt@0.5``, ``sparsegpt@2:4``, ``lowrank_aware@r64``, ``rtn@3b/g128``."""
        if self.op in ("dense", "remove"):
            return self.op
        if self.op == "prune":
            return f"{self.method}@{self.level:g}"
        if self.op == "nm":
            return f"{self.method}@{self.nm[0]}:{self.nm[1]}"
        if self.op == "lowrank":
            return f"lowrank_aware@r{int(self.level)}"
        return f"rtn@{int(self.level)}b/g{self.group_size or 'row'}"

    @property
    def needs_hessian(self) -> bool:
        """Whether the operator needs the input Hessian ``X^T X`` (SparseGPT, activation-aware SVD)."""
        return self.method in NEEDS_HESSIAN

    def cost(self, shape: tuple[int, int]) -> Cost:
        """Params, FLOPs per token and bytes of a matrix of ``shape`` (in, out) under this action."""
        if self.op == "dense":
            return dense_cost(shape)
        if self.op == "prune":
            return unstructured_cost(shape, self.level)
        if self.op == "nm":
            return nm_cost(shape, self.nm)
        if self.op == "lowrank":
            return lowrank_cost(shape, int(self.level))
        if self.op == "rtn":
            return rtn_cost(shape, int(self.level), self.group_size)
        return ZERO

    def compress(self, w: jax.Array, stats: MatrixStats | None) -> jax.Array:
        """``w`` (in, out) under this action (dense returns ``w``; ``remove`` is not a matrix action).

        Compiled once per action and shape (:func:`jitted_operator`)."""
        if self.op == "dense":
            return w
        if self.op == "remove":
            raise RhojaxError("action 'remove' removes a whole block: list the layer in Plan.removed")
        stats = stats or MatrixStats()
        out = jitted_operator(self)(w, stats.input_norm, stats.hessian)
        assert_finite(out)
        return out

    def operator(self, w: jax.Array, stats: MatrixStats) -> jax.Array:
        """The compression operator of this action (traceable)."""
        if self.op == "prune":
            return compress_matrix(self.method, w, self.level, stats)
        if self.op == "nm":
            return compress_matrix(self.method, w, None, stats, nm=self.nm)
        if self.op == "lowrank":
            return activation_aware_svd(w, stats.hessian, int(self.level), damp=LOWRANK_DAMP).astype(w.dtype)
        return compress_matrix("rtn", w, int(self.level), stats, group_size=self.group_size)


@functools.cache
def jitted_operator(action: Action) -> Callable[[jax.Array, jax.Array | None, jax.Array | None], jax.Array]:
    """``action``'s operator as one compiled function of ``(w, input_norm, hessian)``."""
    return jax.jit(lambda w, input_norm, hessian: action.operator(w, MatrixStats(input_norm, hessian)))


DENSE = Action("dense")
REMOVE = Action("remove")


def prune(method: str, sparsity: float) -> Action:
    """Unstructured pruning with ``method`` (one of :data:`PRUNE_METHODS`) to ``sparsity`` in (0, 1]."""
    if method not in PRUNE_METHODS:
        raise RhojaxError(f"pruning method {method!r}: choose one of {', '.join(PRUNE_METHODS)}")
    if not 0.0 < sparsity <= 1.0:
        raise RhojaxError(f"sparsity {sparsity}: choose a value in (0, 1]")
    return Action("prune", method, float(sparsity))


def nm(method: str, pattern: tuple[int, int]) -> Action:
    """N:M pruning with ``method``: keep ``pattern[0]`` of every ``pattern[1]`` consecutive inputs. An N:M mask is
    chosen per output channel anyway, so ``sparsegpt_row`` gives the same action as ``sparsegpt``."""
    if method not in PRUNE_METHODS:
        raise RhojaxError(f"pruning method {method!r}: choose one of {', '.join(PRUNE_METHODS)}")
    return Action("nm", method.removesuffix("_row"), 1.0 - pattern[0] / pattern[1], (int(pattern[0]), int(pattern[1])))


def lowrank(rank: int) -> Action:
    """Activation-aware SVD to ``rank``."""
    return Action("lowrank", "lowrank_aware", float(int(rank)))


def rtn(bits: int, group_size: int | None) -> Action:
    """Symmetric RTN at ``bits`` with one scale per ``group_size`` inputs (None: per output channel)."""
    return Action("rtn", "rtn", float(int(bits)), group_size=group_size)


_NAME = re.compile(r"^(?P<method>[a-z_]+)@(?:(?P<n>\d+):(?P<m>\d+)|r(?P<rank>\d+)|(?P<bits>\d+)b/g(?P<g>\d+|row)|"
                   r"(?P<sparsity>[0-9.]+))$")


def parse_action(name: str) -> Action:
    """The action written as :attr:`Action.name` (how plan.json stores it)."""
    if name in ("dense", "remove"):
        return Action(name)
    match = _NAME.match(name)
    if match is None:
        raise RhojaxError(f"action {name!r}: expected dense, remove, METHOD@SPARSITY, METHOD@N:M, "
                          "lowrank_aware@rRANK or rtn@BITSb/gGROUP")
    g = match.groupdict()
    if g["n"] is not None:
        return nm(g["method"], (int(g["n"]), int(g["m"])))
    if g["rank"] is not None:
        return lowrank(int(g["rank"]))
    if g["bits"] is not None:
        return rtn(int(g["bits"]), None if g["g"] == "row" else int(g["g"]))
    return prune(g["method"], float(g["sparsity"]))


@dataclasses.dataclass(frozen=True)
class ActionGrid:
    """The per-matrix candidates: pruning ``methods`` at ``sparsities`` and at the ``nm_patterns``, ranks at
    ``rank_fractions`` of ``min(in, out)``, RTN at ``bits`` with ``group_size``; ``removal``: blocks may go."""

    methods: tuple[str, ...] = ("sparsegpt_row",)
    sparsities: tuple[float, ...] = (0.3, 0.5, 0.7)
    nm_patterns: tuple[tuple[int, int], ...] = ((2, 4),)
    rank_fractions: tuple[float, ...] = (0.125, 0.25)
    bits: tuple[int, ...] = (2, 3, 4)
    group_size: int | None = 128
    removal: bool = True

    def site_actions(self, shape: tuple[int, int]) -> list[Action]:
        """Every candidate for a matrix of ``shape``, dense first. Skipped: N:M patterns whose M does not
        divide ``in``, ranks that store no fewer parameters than dense; RTN groups that do not divide ``in``
        fall back to one scale per output channel."""
        fan_in, fan_out = shape
        out = [DENSE]
        for method in self.methods:
            out += [prune(method, s) for s in self.sparsities]
            out += [nm(method, p) for p in self.nm_patterns if fan_in % p[1] == 0]
        for f in self.rank_fractions:
            rank = max(1, round(f * min(shape)))
            if rank * (fan_in + fan_out) < fan_in * fan_out:
                out.append(lowrank(rank))
        group = self.group_size if self.group_size and fan_in % self.group_size == 0 else None
        out += [rtn(b, group) for b in self.bits]
        return list(dict.fromkeys(out))


@dataclasses.dataclass(frozen=True)
class Plan:
    """Removed blocks (original numbering) and an action for each matrix of every other block."""

    removed: tuple[int, ...]
    actions: Mapping[Site, Action]

    def action(self, layer: int, kind: str) -> Action:
        """The action on ``(layer, kind)``: ``remove`` for a removed block, ``dense`` when none is listed."""
        return REMOVE if layer in self.removed else self.actions.get((layer, kind), DENSE)

    def cost(self, config: ModelConfig) -> Cost:
        """The total cost of the planned block matrices."""
        total = ZERO
        for layer, kind in config.sites:
            total = total + self.action(layer, kind).cost(config.site_shape(kind))
        return total

    def to_dict(self, config: ModelConfig) -> dict:
        """Plain data for plan.json: removed layers and one ``{layer, kind, action}`` per site."""
        return {"removed_layers": sorted(self.removed),
                "sites": [{"layer": layer, "kind": kind, "action": self.action(layer, kind).name}
                          for layer, kind in config.sites]}

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """The plan :meth:`to_dict` wrote (the ``plan`` of plan.json); sites of removed layers are ignored."""
        removed = tuple(int(i) for i in data["removed_layers"])
        actions = {(int(s["layer"]), s["kind"]): parse_action(s["action"]) for s in data["sites"]
                   if int(s["layer"]) not in removed}
        return cls(removed, actions)


def dense_model_cost(config: ModelConfig) -> Cost:
    """The dense bfloat16 cost of every block matrix: the denominator of every budget fraction."""
    return Plan((), {}).cost(config)


def uniform_plan(config: ModelConfig, action: Action | Callable[[tuple[int, int]], Action],
                 removed: Iterable[int] = ()) -> Plan:
    """One action (or one per shape) for every matrix of the blocks not ``removed``."""
    pick = action if callable(action) else (lambda shape: action)
    removed = tuple(sorted(int(i) for i in removed))
    return Plan(removed, {(layer, kind): pick(config.site_shape(kind)) for layer, kind in config.sites
                          if layer not in removed})


def compress_plan(config: ModelConfig, params: dict, plan: Plan, calibration: np.ndarray, *, batch_size: int = 4,
                  on_layer: Callable[[int], None] | None = None) -> dict:
    """Every matrix compressed by its action with statistics of its real input (sequential calibration on
    ``calibration`` windows, removed blocks bypassed but still present): :func:`apply_plan` before the removal."""
    hessians = any(a.needs_hessian for a in plan.actions.values())
    return compress_sequentially(
        config, params, calibration, lambda layer, kind, w, stats: plan.action(layer, kind).compress(w, stats),
        hessians=hessians, bypass=plan.removed, batch_size=batch_size, on_layer=on_layer)


def remove_planned(config: ModelConfig, params: dict, plan: Plan) -> tuple[ModelConfig, dict]:
    """``params`` with the plan's removed blocks deleted (unchanged when it removes none)."""
    return (config, params) if not plan.removed else remove_layers(config, params, plan.removed)


def apply_plan(config: ModelConfig, params: dict, plan: Plan, calibration: np.ndarray, *, batch_size: int = 4,
               on_layer: Callable[[int], None] | None = None) -> tuple[ModelConfig, dict]:
    """The planned model: :func:`compress_plan`, then the removed blocks deleted."""
    return remove_planned(config, compress_plan(config, params, plan, calibration, batch_size=batch_size,
                                                on_layer=on_layer), plan)
