"""Budgeted compression plans: which block to remove and what to do to every matrix (keep, prune, reduce the
rank, quantize) so that a model fits a budget of parameters, FLOPs or bytes at the least predicted loss.

The pieces, each usable on its own:

- :mod:`rhojax.plan.costs`: what an action costs a matrix, in every unit (metadata included);
- :mod:`rhojax.plan.actions`: :class:`Action`, the candidate grid :class:`ActionGrid`, :class:`Plan` and
  :func:`apply_plan` (build the planned model with sequential calibration);
- :mod:`rhojax.plan.cost_model`: the loss curve ``dL = kappa * delta^p`` and the drift ``delta`` of a site
  carried to the output through the contraction profile;
- :mod:`rhojax.plan.optimize`: the multiple-choice knapsack, solved exactly by dynamic programming;
- :mod:`rhojax.plan.choose`: the table of predicted drifts, its corrections, and :func:`choose_plan`;
- :mod:`rhojax.plan.baselines`: the one-knob methods at the same budget;
- :mod:`rhojax.plan.pack`: the planned model stored packed, at the bytes the cost table counts;
- :func:`run_plan_study` (:class:`PlanSettings`): measure, plan, and optionally build and verify, in a run folder.
"""

from rhojax.plan.actions import (
    DENSE,
    REMOVE,
    Action,
    ActionGrid,
    Plan,
    apply_plan,
    compress_plan,
    dense_model_cost,
    lowrank,
    nm,
    parse_action,
    prune,
    rtn,
    uniform_plan,
)
from rhojax.plan.baselines import BASELINES, baseline_plan
from rhojax.plan.choose import anchored_table, check_feasible, choose_plan, drift_table, lightest_fraction
from rhojax.plan.cost_model import (
    DepthExponentFit,
    LossCurve,
    effective_drift,
    fit_depth_exponent,
    fit_loss_curve,
    predict,
    propagated_drift,
)
from rhojax.plan.costs import UNITS, Cost
from rhojax.plan.optimize import Block, Group, solve, solve_layered
from rhojax.plan.pack import load_packed, save_packed
from rhojax.plan.settings import PlanSettings, parse_target
from rhojax.plan.study import run_plan_study

__all__ = [
    "BASELINES",
    "DENSE",
    "REMOVE",
    "UNITS",
    "Action",
    "ActionGrid",
    "Block",
    "Cost",
    "DepthExponentFit",
    "Group",
    "LossCurve",
    "Plan",
    "PlanSettings",
    "anchored_table",
    "apply_plan",
    "baseline_plan",
    "check_feasible",
    "choose_plan",
    "compress_plan",
    "dense_model_cost",
    "drift_table",
    "effective_drift",
    "fit_depth_exponent",
    "fit_loss_curve",
    "lightest_fraction",
    "load_packed",
    "lowrank",
    "nm",
    "parse_action",
    "parse_target",
    "predict",
    "propagated_drift",
    "prune",
    "rtn",
    "run_plan_study",
    "save_packed",
    "solve",
    "solve_layered",
    "uniform_plan",
]
