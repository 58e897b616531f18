"""The published one-knob methods at the same budget as a plan, each written as a :class:`~rhojax.plan.actions.Plan`.

Levels are chosen so that the baseline's cost (:mod:`rhojax.plan.costs`) is at most the budget:

- unstructured sparsity ``s`` (uniform Wanda, uniform SparseGPT, OWL, AlphaPruning and a rhojax schedule, all
  with Wanda or SparseGPT inside each layer at the schedule's layer sparsity): ``params``: ``s = 1 - f``;
  ``bytes``: ``2 (1 - s) + 1/8 <= 2 f``, so ``s = 17/16 - f``; ``flops``: not applicable (no FLOPs saved);
- Block Influence removal (ShortGPT): the fewest blocks, least influential first, with ``(L - k) / L <= f``;
- uniform RTN (bytes): the most bits ``b`` with ``(b + 16 / g) / 16 <= f``;
- uniform activation-aware low rank (flops, params, bytes): per matrix the largest ``r`` with
  ``r (in + out) <= f in out``;
- uniform 2:4 SparseGPT: where ``1/2`` (params, flops) or ``9/16`` (bytes) fits.

A baseline that cannot meet the budget is returned as a reason instead of a plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rhojax.allocation.schedules import alpha_pruning, depth_increasing_sparsity, owl, rho_guided, uniform
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.plan.actions import Plan, dense_model_cost, lowrank, nm, prune, rtn, uniform_plan

#: The one-knob baselines: the published methods, SparseGPT with its mask per output channel, rhojax's schedule.
BASELINES: tuple[str, ...] = ("uniform_wanda", "uniform_sparsegpt", "uniform_sparsegpt_row", "owl_wanda",
                              "alpha_wanda", "schedule_wanda", "bi_removal", "uniform_rtn", "uniform_lowrank",
                              "uniform_nm_sparsegpt")
#: rhojax's layer-wise schedules a baseline can use (:mod:`rhojax.allocation.schedules`).
RHOJAX_SCHEDULES: tuple[str, ...] = ("depth", "rho")


def sparsity_for(unit: str, fraction: float) -> float | None:
    """The unstructured sparsity that spends ``fraction`` of ``unit``, or None where none can."""
    s = {"params": 1.0 - fraction, "bytes": 17.0 / 16.0 - fraction}.get(unit)
    return None if s is None or not 0.0 < s < 1.0 else s


def layer_plan(config: ModelConfig, method: str, sparsities: np.ndarray) -> Plan:
    """``method`` at sparsity ``sparsities[l]`` on every matrix of layer ``l`` (0 keeps the layer dense)."""
    return Plan((), {(layer, kind): prune(method, float(sparsities[layer])) for layer, kind in config.sites
                     if sparsities[layer] > 0})


def removal_count(num_layers: int, fraction: float) -> int:
    """The fewest blocks ``k`` with ``(L - k) / L <= fraction``."""
    return math.ceil(num_layers * (1.0 - fraction) - 1e-9)


def baseline_plan(name: str, config: ModelConfig, unit: str, fraction: float,
                  signal: Callable[[str], np.ndarray], schedule: str = "depth") -> Plan | str:
    """The plan of baseline ``name`` (see :data:`BASELINES`) at ``fraction`` of ``unit``, or why there is none.

    ``signal(name)`` returns a dense per-layer signal: ``outlier_ratio`` (OWL), ``alpha`` (AlphaPruning),
    ``rho`` (the rho-guided schedule) or ``bi`` (Block Influence).
    """
    L = config.num_layers
    s = sparsity_for(unit, fraction)
    if name in ("uniform_wanda", "uniform_sparsegpt", "uniform_sparsegpt_row", "owl_wanda", "alpha_wanda",
                "schedule_wanda"):
        if s is None:
            return f"unstructured sparsity cannot spend {fraction:g} of the {unit}"
        if name.startswith("uniform_"):
            return layer_plan(config, name.removeprefix("uniform_"), uniform(L, s))
        if name == "owl_wanda":
            return layer_plan(config, "wanda", owl(signal("outlier_ratio"), s))
        if name == "alpha_wanda":
            return layer_plan(config, "wanda", alpha_pruning(signal("alpha"), s))
        ratios = depth_increasing_sparsity(L, s) if schedule == "depth" else rho_guided(signal("rho"), s)
        return layer_plan(config, "wanda", ratios)
    if name == "bi_removal":
        k = removal_count(L, fraction)
        if k >= L:
            return f"removing blocks cannot reach {fraction:g} of the {unit} with one block left"
        order = np.lexsort((np.arange(L), np.asarray(signal("bi"))))
        return Plan(tuple(sorted(int(i) for i in order[:k])), {})
    if name == "uniform_rtn":
        if unit != "bytes":
            return "RTN saves bytes only"
        def plan(bits):  # groups as the planner's grid: one scale per output channel where 128 does not divide in
            return uniform_plan(config, lambda shape: rtn(bits, 128 if shape[0] % 128 == 0 else None))

        budget = fraction * dense_model_cost(config).bytes
        fits = [b for b in range(2, 9) if plan(b).cost(config).bytes <= budget]
        if not fits:
            return f"no RTN bit width (groups of 128, or per channel) fits {fraction:g} of the bytes"
        return plan(max(fits))
    if name == "uniform_lowrank":
        def pick(shape):
            return lowrank(max(1, math.floor(fraction * shape[0] * shape[1] / (shape[0] + shape[1]))))
        return uniform_plan(config, pick)
    if name == "uniform_nm_sparsegpt":
        need = {"params": 0.5, "flops": 0.5, "bytes": 9.0 / 16.0}[unit]
        if fraction < need:
            return f"2:4 sparsity spends {need:g} of the {unit}, more than {fraction:g}"
        return uniform_plan(config, nm("sparsegpt", (2, 4)))
    raise RhojaxError(f"baseline {name!r}: choose from {', '.join(BASELINES)}")
