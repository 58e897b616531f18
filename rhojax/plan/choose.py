"""From measurements to a plan: each candidate's predicted drift (the table), its corrections (uniform anchors,
the closed loop), and the plan of least predicted loss increase within a budget.

The table maps ``(layer, kind, action name)`` to the candidate's effective drift ``delta``, whose predicted loss
increase is ``curve.loss(delta)`` (:class:`~rhojax.plan.cost_model.LossCurve`); ``(layer, "block", "remove")``
is the removal of a whole block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from rhojax.allocation.schedules import output_amplification
from rhojax.errors import RhojaxError
from rhojax.plan.actions import (
    DENSE,
    REMOVE,
    Action,
    ActionGrid,
    Plan,
    dense_model_cost,
    uniform_plan,
)
from rhojax.plan.cost_model import (
    DepthExponentFit,
    LossCurve,
    anchor_factor,
    effective_drift,
    fit_depth_exponent,
    interpolate_level,
    level_factor,
    predict,
    propagated_drift,
)
from rhojax.plan.optimize import Block, Group, discretise, solve_layered
from rhojax.plan.settings import parse_target


def candidates(config, grid: ActionGrid) -> dict[int, list[tuple[str, object]]]:
    """Every non-dense candidate of every layer as ``(kind, action)``; ``("block", remove)`` for removal."""
    out = {}
    for layer in range(config.num_layers):
        out[layer] = [(kind, a) for kind in config.site_kinds for a in grid.site_actions(config.site_shape(kind))
                      if a.op != "dense"] + ([("block", REMOVE)] if grid.removal else [])
    return out


def lightest_fraction(config, grid: ActionGrid, unit: str) -> float:
    """The smallest fraction of ``unit`` any plan on ``grid`` reaches (one block must remain)."""
    per_block = [sum(min(a.cost(config.site_shape(k)).get(unit) for a in grid.site_actions(config.site_shape(k)))
                     for k in config.site_kinds) for _ in range(config.num_layers)]
    lightest = min(per_block) if grid.removal else sum(per_block)
    return lightest / dense_model_cost(config).get(unit)


def check_feasible(config, grid: ActionGrid, target: str) -> None:
    """A one-line error when ``target`` is below :func:`lightest_fraction` (no plan on ``grid`` reaches it)."""
    unit, fraction = parse_target(target)
    least = lightest_fraction(config, grid, unit)
    if fraction < least - 1e-12:
        raise RhojaxError(f"target {target!r} is infeasible: every action at its most aggressive still keeps "
                          f"{least:.3f} of the dense {unit}; raise the target, or add more aggressive levels "
                          "(sparsities, ranks, bits) or allow removal")


def depth_fit(fitted: list[dict], rho: np.ndarray) -> DepthExponentFit:
    """The loss curve of the sites measured end to end (``fitted`` records), with ``gamma`` fitted and at 1
    (:func:`~rhojax.plan.cost_model.fit_depth_exponent`)."""
    layers = np.array([r["layer"] for r in fitted], np.int64)
    return fit_depth_exponent(np.array([r["local_error"] for r in fitted]), output_amplification(rho)[layers],
                              np.array([r["delta_loss"] for r in fitted]))


def chosen_curve(fit: DepthExponentFit, amplification: str) -> LossCurve:
    """The curve :attr:`PlanSettings.amplification` asks for."""
    return {"tested": fit.chosen(), "fitted": fit.best, "profile": fit.profile}[amplification]


def drift_table(config, grid: ActionGrid, records: list[dict], curve: LossCurve, rho: np.ndarray,
                measured_sparsities: tuple[float, ...]) -> dict[tuple[int, str, str], float]:
    """Effective drift of every candidate ``(layer, kind, action name)``; unmeasured sparsities interpolated
    linearly in level between the measured ones of the same site and method (dense counts as level 0)."""
    layers = np.array([r["layer"] for r in records])
    local = np.array([r["local_error"] for r in records])
    delta = np.array([np.nan if r["delta_loss"] is None else r["delta_loss"] for r in records])
    drift = effective_drift(curve, propagated_drift(local, layers, rho, curve.gamma), delta)
    table = {(r["layer"], r["kind"], r["action"]): float(d) for r, d in zip(records, drift, strict=True)}
    for layer, kind in config.sites:
        for a in grid.site_actions(config.site_shape(kind)):
            if a.op == "prune" and (layer, kind, a.name) not in table:
                known = [0.0] + list(measured_sparsities)
                values = [0.0] + [table[(layer, kind, f"{a.method}@{s:g}")] for s in measured_sparsities]
                table[(layer, kind, a.name)] = interpolate_level(known, values, a.level)
    return table


def choose_plan(config, grid: ActionGrid, table: dict, curve: LossCurve, unit: str, budget: float, bins: int) -> Plan:
    """The plan minimising the predicted loss ``sum_a curve.loss(delta_a)`` with cost in ``unit`` at most ``budget``."""
    blocks, options = [], []
    for layer in range(config.num_layers):
        groups, layer_options = [], []
        for kind in config.site_kinds:
            shape = config.site_shape(kind)
            actions = grid.site_actions(shape)
            weights = discretise(np.array([a.cost(shape).get(unit) for a in actions]), budget, bins)
            costs = np.array([0.0 if a.op == "dense" else curve.loss(table[(layer, kind, a.name)]) for a in actions])
            groups.append(Group(weights, costs))
            layer_options.append(actions)
        removal = (0, float(curve.loss(table[(layer, "block", "remove")]))) if grid.removal else None
        blocks.append(Block(tuple(groups), removal))
        options.append(layer_options)
    forbidden: set[int] = set()
    while True:
        blocks_now = [dataclasses.replace(b, removal=None) if i in forbidden else b for i, b in enumerate(blocks)]
        try:
            choice, _ = solve_layered(blocks_now, bins)
        except RhojaxError:
            raise RhojaxError(f"no plan fits {unit} budget {budget:.4g}: raise the target or widen the grid") from None
        removed = [i for i, c in enumerate(choice) if c is None]
        if len(removed) < config.num_layers:
            break
        forbidden.add(max(removed, key=lambda i: blocks[i].removal[1]))  # keep the costliest-to-remove block
    actions = {(layer, kind): options[layer][k][o] for layer, c in enumerate(choice) if c is not None
               for k, (kind, o) in enumerate(zip(config.site_kinds, c, strict=True))}
    return Plan(tuple(removed), actions)


def plan_drifts(config, plan: Plan, table: dict) -> list[float]:
    """The effective drifts of the plan's non-dense sites (removed blocks count once each): :func:`layer_drifts`
    flattened."""
    return [d for drifts in layer_drifts(plan, table).values() for d in drifts]


def layer_drifts(plan: Plan, table: dict) -> dict[int, list[float]]:
    """The effective drifts of the plan's compressions, by layer: a removed block's removal, else its
    compressed matrices."""
    out: dict[int, list[float]] = {layer: [table[(layer, "block", "remove")]] for layer in plan.removed}
    for (layer, kind), a in sorted(plan.actions.items()):
        if a.op != "dense" and layer not in plan.removed:
            out.setdefault(layer, []).append(table[(layer, kind, a.name)])
    return out


def scaled_table(table: dict, factor: Callable[[tuple[int, str, str]], float], curve: LossCurve) -> dict:
    """``table`` with each candidate's drift scaled by ``factor(key)^(1/p)``, so that its predicted loss
    ``curve.loss(delta)`` is multiplied by ``factor(key)``."""
    return {key: d * factor(key) ** (1.0 / curve.p) for key, d in table.items()}


def corrected_table(table: dict, factors: dict[int, float], curve: LossCurve) -> dict:
    """``table`` with every candidate of a corrected layer, its removal included, scaled so that its predicted
    loss is multiplied by ``r_t`` (a layer whose matrices became dearer must not become cheap to remove)."""
    return scaled_table(table, lambda key: factors.get(key[0], 1.0), curve)


def anchor_plan(config, grid: ActionGrid, action: Action) -> Plan:
    """``action`` on every matrix the grid allows it on (N:M needs ``in`` divisible by M), the rest dense."""
    return uniform_plan(config, lambda shape: action if action in grid.site_actions(shape) else DENSE)


def family(action: Action) -> tuple[str, str]:
    """What an anchor speaks for: the same op (unstructured or N:M pruning) with the same method."""
    return action.op, action.method


def anchored_table(config, grid: ActionGrid, table: dict, curve: LossCurve,
                   measured: dict[Action, float]) -> tuple[dict, list[dict]]:
    """``table`` rescaled by the uniform anchors, and one row per anchor.

    ``measured``: each anchor action's measured loss increase (its :func:`anchor_plan` built with sequential
    calibration). Its factor ``c = measured / predicted`` (:func:`~rhojax.plan.cost_model.anchor_factor`, the
    prediction from ``table``) multiplies the predicted loss of every candidate of its :func:`family`,
    interpolated in level between the family's anchors (:func:`~rhojax.plan.cost_model.level_factor`); other
    candidates and removals keep theirs. Each anchor plan is then predicted at its measured loss (within the
    factor's bounds)."""
    rows = []
    for action, loss in measured.items():
        predicted = predict(curve, plan_drifts(config, anchor_plan(config, grid, action), table))
        rows.append({"action": action.name, "measured_delta_loss": float(loss), "predicted_delta_loss": predicted,
                     "factor": anchor_factor(float(loss), predicted)})
    families: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for action, row in zip(measured, rows, strict=True):
        levels, factors = families.setdefault(family(action), ([], []))
        levels.append(action.level)
        factors.append(row["factor"])
    actions = {a.name: a for kind in config.site_kinds for a in grid.site_actions(config.site_shape(kind))}

    def factor(key: tuple[int, str, str]) -> float:
        action = actions.get(key[2])
        anchors = families.get(family(action)) if action is not None else None
        return level_factor(*anchors, action.level) if anchors else 1.0

    return scaled_table(table, factor, curve), rows


def predicted_or_none(config, plan: Plan, table: dict, curve: LossCurve) -> float | None:
    """The cost model's prediction for any plan (a baseline's too), or None when it uses an action off the
    grid (e.g. OWL's per-layer sparsities)."""
    try:
        return predict(curve, plan_drifts(config, plan, table))
    except KeyError:
        return None
