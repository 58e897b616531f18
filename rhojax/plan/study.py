"""The plan study: measure, predict, optimise, and with ``apply`` build the plan and its baselines and evaluate.

Steps (each a part of a :class:`~rhojax.runs.RunFolder`, so a killed run resumes):

1. calibration windows (``calib_text``, its statistics split): input statistics of every matrix, the
   dense states, the contraction profile ``rho`` (aggregate, Gaussian perturbations of size ``rho_eps``);
2. every candidate ``(site, action)`` measured alone (:mod:`rhojax.plan.measure`): its local error, and its
   loss increase end to end (all of them with ``delta_source="measured"``, a seeded sample of ``fit_sites``
   with ``"propagated"``);
3. the loss curve fitted (with the depth exponent ``gamma`` of the amplification where the sites call for it)
   and each candidate's effective drift formed (:mod:`rhojax.plan.cost_model`), sparsities that were not
   measured interpolated in level;
4. the plan of least predicted loss increase within the budget (:mod:`rhojax.plan.optimize`);
5. with ``apply``: the plan and every baseline (:mod:`rhojax.plan.baselines`) built with sequential
   calibration and evaluated on the evaluation split of ``text`` (perplexity with a 95% bootstrap interval,
   ratio to dense with a paired interval, windows resampled).

The planner itself reads calibration windows only; the evaluation split is read in step 5 alone.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable

import jax
import numpy as np

from rhojax.allocation.metrics import layer_alphas, outlier_ratios
from rhojax.allocation.schedules import output_amplification
from rhojax.compress import calibration_stats
from rhojax.depth.influence import block_influence
from rhojax.depth.scores import layer_rho, rho_of
from rhojax.errors import RhojaxError
from rhojax.eval.intervals import perplexity_ci, ratio_ci
from rhojax.eval.perplexity import window_nll_sums
from rhojax.eval.task_data import parse_task_names
from rhojax.eval.tasks import evaluate
from rhojax.plan import baselines as baseline_plans
from rhojax.plan.actions import (
    DENSE,
    PRUNE_METHODS,
    REMOVE,
    Action,
    ActionGrid,
    Plan,
    apply_plan,
    compress_plan,
    dense_model_cost,
    nm,
    prune,
    remove_planned,
    uniform_plan,
)
from rhojax.plan.cost_model import (
    DepthExponentFit,
    LossCurve,
    anchor_factor,
    correction_factors,
    effective_drift,
    fit_depth_exponent,
    interpolate_level,
    layer_marginals,
    level_factor,
    predict,
    propagated_drift,
)
from rhojax.plan.costs import UNITS
from rhojax.plan.measure import measure_layer
from rhojax.plan.optimize import Block, Group, discretise, solve_layered
from rhojax.progress import SILENT, Progress
from rhojax.runs import RunFolder
from rhojax.sensitivity.sweep import dense_reference
from rhojax.settings import TextSettings, setting

DELTA_SOURCES: tuple[str, ...] = ("measured", "propagated")
AMPLIFICATIONS: tuple[str, ...] = ("tested", "fitted", "profile")


def parse_target(target: str) -> tuple[str, float]:
    """``"bytes=0.15"`` -> ``("bytes", 0.15)``; a one-line error naming the target and the fix otherwise."""
    unit, sep, value = str(target).partition("=")
    unit = unit.strip()
    if not sep or unit not in UNITS:
        raise RhojaxError(f"target {target!r}: write UNIT=FRACTION with UNIT one of {', '.join(UNITS)}, "
                          "e.g. params=0.5, flops=0.6 or bytes=0.15")
    try:
        fraction = float(value)
    except ValueError:
        raise RhojaxError(f"target {target!r}: the fraction {value!r} is not a number; write e.g. {unit}=0.5") from None
    if not 0.0 < fraction <= 1.0:
        raise RhojaxError(f"target {target!r}: the fraction must lie in (0, 1] (a share of the dense model's {unit}); "
                          f"write e.g. {unit}=0.5")
    return unit, fraction


@dataclasses.dataclass(frozen=True)
class PlanSettings(TextSettings):
    """The budget, the candidate grid, the measurement and the verification of a compression plan."""

    target: str = setting("params=0.5", "Budget UNIT=FRACTION of the dense block matrices: params (non-zero "
                          "parameters), flops (per token on dense hardware) or bytes (vs bfloat16, metadata included).")
    methods: tuple[str, ...] = setting(("sparsegpt_row",), "Pruning methods of the candidates: wanda, sparsegpt, "
                                       "sparsegpt_row (SparseGPT with the mask per output channel).")
    sparsities: tuple[float, ...] = setting((0.3, 0.4, 0.5, 0.6, 0.7), "Unstructured sparsities of the candidates.")
    measured_sparsities: tuple[float, ...] = setting((0.3, 0.5, 0.7), "Sparsities measured (the others "
                                                     "interpolated in level; empty: all).")
    nm: bool = setting(True, "Also 2:4 N:M pruning (saves FLOPs on sparse tensor cores).")
    rank_fractions: tuple[float, ...] = setting((0.125, 0.25), "Low ranks as fractions of min(in, out).")
    bits: tuple[int, ...] = setting((2, 3, 4), "RTN bit widths.")
    group_size: int = setting(128, "RTN group size (inputs per bfloat16 scale).")
    removal: bool = setting(True, "Allow removing whole blocks.")
    delta_source: str = setting("measured", "measured: every candidate's loss increase measured end to end; "
                                "propagated: local errors carried by rho, fit-sites of them measured end to end.")
    fit_sites: int = setting(64, "Candidates measured end to end for the loss curve (delta-source propagated).")
    amplification: str = setting("tested", "How the profile carries a local error to the output, eps * A^gamma: "
                                 "tested (gamma fitted on the end-to-end sites where they reject gamma = 1 at the "
                                 "5% level, else 1), fitted (always fitted) or profile (gamma = 1).")
    calib_tokens: int = setting(2048, "Measurement tokens of calib-text: the local errors, the end-to-end loss "
                                "increases, the profile and the calibration loss of a plan.")
    stats_tokens: int = setting(8192, "Statistics tokens of calib-text, other windows than the measurement ones: "
                                "input norms, Hessians and covariances of every compression, sequential calibration.")
    tokens: int = setting(16384, "Evaluation token budget (apply): windows = tokens // seq-len.")
    rho_eps: float = setting(0.1, "Relative perturbation size of the contraction profile.")
    samples: int = setting(4, "Gaussian perturbation samples per layer.")
    seed: int = setting(0, "Seed of the perturbations, the fit-site sample and the bootstrap.")
    calib_seed: int = setting(0, "Calibration sample: 0 takes the first windows of calib-text (measurement, then "
                              "statistics); another value draws them at random from its first 8x as many.")
    apply: bool = setting(False, "Build the plan and the baselines and evaluate them.")
    anchors: tuple[str, ...] = setting((), "Uniform anchor plans (e.g. sparsegpt_row@0.5, wanda@0.5, sparsegpt@2:4), "
                                       "built with sequential calibration; each one's measured calibration loss "
                                       "over its predicted one rescales the candidates of its method and pattern "
                                       "(empty: none).")
    closed_loop: bool = setting(False, "With apply: measure each layer's contribution on the planned model, "
                                "correct the layers where predicted and measured differ most, and re-plan once.")
    replan_layers: int = setting(6, "Layers corrected by the closed loop.")
    tasks: tuple[str, ...] = setting((), "Zero-shot tasks scored with apply (e.g. arc_easy,piqa; empty: none).")
    task_limit: int = setting(100, "First N items of each task.")
    baselines: tuple[str, ...] = setting(baseline_plans.BASELINES, "Baselines evaluated with apply: "
                                         + ", ".join(baseline_plans.BASELINES) + ".")
    schedule: str = setting("depth", "rhojax schedule of the schedule_wanda baseline: depth or rho.")
    bins: int = setting(10000, "Budget discretisation of the optimizer.")
    batch_size: int = setting(4, "Windows per compiled call.")
    config_batch: int = setting(4, "Candidates of one layer measured together (vmap).")
    boots: int = setting(1000, "Bootstrap resamples of each interval.")

    def __post_init__(self) -> None:
        parse_target(self.target)
        if self.tasks:
            parse_task_names(list(self.tasks))
        for name, value, choices in (("delta_source", self.delta_source, DELTA_SOURCES),
                                     ("amplification", self.amplification, AMPLIFICATIONS),
                                     ("schedule", self.schedule, baseline_plans.RHOJAX_SCHEDULES)):
            if value not in choices:
                raise RhojaxError(f"{name} {value!r}: choose one of {', '.join(choices)}")
        for m in self.methods:
            if m not in PRUNE_METHODS:
                raise RhojaxError(f"methods: {m!r} is not one of {', '.join(PRUNE_METHODS)}")
        for b in self.baselines:
            if b not in baseline_plans.BASELINES:
                raise RhojaxError(f"baselines: {b!r} is not one of {', '.join(baseline_plans.BASELINES)}")
        allowed = [a.name for a in self.anchor_choices()]
        for name in self.anchors:
            if name not in allowed:
                raise RhojaxError(f"anchors: {name!r} is not a pruning action of the grid; choose among "
                                  f"{', '.join(allowed)}")
        missing = set(self.measured_sparsities) - set(self.sparsities)
        if missing or (self.measured_sparsities and (min(self.measured_sparsities) > min(self.sparsities)
                                                     or max(self.measured_sparsities) < max(self.sparsities))):
            raise RhojaxError(f"measured_sparsities {self.measured_sparsities} must be among the sparsities "
                              f"{self.sparsities} and include the lowest and the highest")

    def plan_windows(self, tokenizer) -> tuple[np.ndarray, np.ndarray]:
        """``(measurement, statistics)`` windows of ``calib_text``: disjoint, ``calib_tokens // seq_len`` and
        ``stats_tokens // seq_len`` of them, drawn together for ``calib_seed``; the planner reads nothing else."""
        n = max(1, self.calib_tokens // self.seq_len)
        both = dataclasses.replace(self, calib_tokens=(n + max(1, self.stats_tokens // self.seq_len)) * self.seq_len)
        windows = both.calibration_windows(tokenizer, self.calib_seed)
        return windows[:n], windows[n:]

    def anchor_choices(self) -> list[Action]:
        """The actions an anchor may name: every pruning action of the grid (unstructured and N:M)."""
        grid = self.grid()
        return list(dict.fromkeys([prune(m, level) for m in grid.methods for level in grid.sparsities]
                                  + [nm(m, p) for m in grid.methods for p in grid.nm_patterns]))

    def anchor_actions(self) -> list[Action]:
        """The actions of :attr:`anchors`."""
        by_name = {a.name: a for a in self.anchor_choices()}
        return [by_name[name] for name in self.anchors]

    def grid(self) -> ActionGrid:
        """The candidate grid these settings describe."""
        return ActionGrid(tuple(self.methods), tuple(self.sparsities), ((2, 4),) if self.nm else (),
                          tuple(self.rank_fractions), tuple(self.bits), self.group_size, self.removal)


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


def plan_digest(config, plan: Plan) -> str:
    """A short content hash of ``plan`` (removed layers and every site's action)."""
    text = json.dumps(plan.to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def describe_plan(config, plan: Plan) -> dict:
    """Counts of each action, the removed layers and the budget used in every unit."""
    counts = Counter(plan.action(layer, kind).name for layer, kind in config.sites if layer not in plan.removed)
    return {**plan.to_dict(config), "action_counts": dict(sorted(counts.items())),
            "budget_used": plan.cost(config).fraction(dense_model_cost(config))}


class PlanStudy:
    """One model, one :class:`PlanSettings`, one run folder; every unit of work is a part."""

    def __init__(self, model, run: RunFolder, settings: PlanSettings, progress: Progress = SILENT,
                 measurements: RunFolder | None = None):
        self.model, self.run, self.s, self.progress = model, run, settings, progress
        self.measurements = run if measurements is None else measurements
        self.config, self.params = model.config, model.params
        self.key = jax.random.PRNGKey(settings.seed)

    @functools.cached_property
    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        return self.s.plan_windows(self.model.tokenizer)

    @property
    def calibration(self) -> np.ndarray:
        """Measurement windows (:meth:`PlanSettings.plan_windows`)."""
        return self.windows[0]

    @property
    def calibration_scored(self) -> int:
        """Next-token predictions scored on the measurement windows (each window's last token predicts nothing)."""
        return self.calibration.shape[0] * (self.calibration.shape[1] - 1)

    @property
    def statistics(self) -> np.ndarray:
        """Statistics windows: what every compression is fitted on."""
        return self.windows[1]

    @functools.cached_property
    def evaluation(self) -> np.ndarray:
        return self.s.evaluation_windows(self.model.tokenizer)

    def signal(self, name: str) -> np.ndarray:
        """Dense per-layer signals on calibration windows: rho (aggregate), bi, outlier_ratio, alpha."""
        c, p, w = self.config, self.params, self.calibration

        def compute():
            if name == "rho":
                return rho_of(layer_rho(c, p, w, self.key, eps=self.s.rho_eps, samples=self.s.samples), "aggregate")
            if name == "bi":
                return block_influence(c, p, w, batch_size=self.s.batch_size).bi
            if name == "outlier_ratio":
                return outlier_ratios(c, p, calibration_stats(c, p, self.statistics, batch_size=self.s.batch_size))
            return layer_alphas(c, p)[0]

        return np.asarray(self.measurements.part(f"signal_{name}", lambda: np.asarray(compute()).tolist()), np.float64)

    def measure(self) -> list[dict]:
        """Every candidate measured alone (one part per layer)."""
        s, c = self.s, self.config
        cands = candidates(c, s.grid())
        measured = {(layer, kind, a.name) for layer, cs in cands.items() for kind, a in cs
                    if a.op != "prune" or not s.measured_sparsities or a.level in s.measured_sparsities}
        ordered = sorted(measured)
        if s.delta_source == "measured":
            end_to_end = set(ordered)
        else:
            pick = np.random.default_rng(s.seed).permutation(len(ordered))[: s.fit_sites]
            end_to_end = {ordered[i] for i in pick}
        stats = reference = None
        records = []
        with self.progress.stage("single-site measurements (layers)", c.num_layers) as update:
            for layer in range(c.num_layers):
                todo = [(k, a) for k, a in cands[layer] if (layer, k, a.name) in measured]
                if not self.measurements.has(f"sites_{layer}") and stats is None:
                    hessians = any(a.needs_hessian for _, a in todo)
                    stats = calibration_stats(c, self.params, self.statistics, hessians=hessians,
                                              batch_size=s.batch_size)
                    reference = dense_reference(c, self.params, self.calibration, batch_size=s.batch_size)
                flags = [(layer, k, a.name) in end_to_end for k, a in todo]
                records += self.measurements.part(f"sites_{layer}", functools.partial(
                    measure_layer, c, self.params, reference, layer, todo, stats, end_to_end=flags,
                    window_batch=max(1, s.batch_size // 2), config_batch=s.config_batch))
                update(layer + 1)
        if s.removal:
            removals = self.removal_losses(reference)
            for r in records:
                if r["kind"] == "block" and r["delta_loss"] is None:
                    r.update(removals[r["layer"]], fit=False)
        return records

    def removal_losses(self, reference=None) -> list[dict]:
        """Every block's removal measured end to end on the calibration windows (a part): ``delta_loss`` and
        ``drift`` per layer. ``L`` suffix passes, a few of the thousands of matrix candidates' cost, and the
        removal is the action the propagated drift predicts worst (about 5x low on SmolLM2)."""
        c = self.config

        def compute():
            ref = reference
            if ref is None:
                ref = dense_reference(c, self.params, self.calibration, batch_size=self.s.batch_size)
            out = []
            with self.progress.stage("block removals end to end", c.num_layers) as update:
                for layer in range(c.num_layers):
                    (record,) = measure_layer(c, self.params, ref, layer, [("block", REMOVE)], None,
                                              end_to_end=[True], window_batch=max(1, self.s.batch_size // 2))
                    out.append({"delta_loss": record["delta_loss"], "drift": record["drift"]})
                    update(layer + 1)
            return out

        return self.measurements.part("removals_end_to_end", compute)

    def anchor_losses(self) -> dict[Action, float]:
        """Each anchor's loss increase on the calibration windows: its :func:`anchor_plan` built with sequential
        calibration on the statistics windows (a part per anchor, shared like the single-site measurements).

        With ``apply`` the anchor is scored like a baseline (:meth:`evaluate`), so a baseline with the same plan
        (uniform SparseGPT at the anchor's level) is read back instead of built again."""
        c, grid = self.config, self.s.grid()
        dense = self.measurements.part("calibration_loss_dense", lambda: self.calibration_loss(c, self.params))
        out = {}
        for action in self.s.anchor_actions():
            name = "anchor_" + re.sub(r"[^A-Za-z0-9_.-]", "_", action.name)

            def compute(action=action, name=name):
                plan = anchor_plan(c, grid, action)
                with self.progress.stage(f"anchor {action.name}: sequential calibration (layers)",
                                         c.num_layers) as update:
                    if self.s.apply:
                        nll = self.evaluate(name, plan, on_layer=update)["calibration_nll"]
                        return nll / self.calibration_scored - dense
                    built = apply_plan(c, self.params, plan, self.statistics, batch_size=self.s.batch_size,
                                       on_layer=update)
                return self.calibration_loss(*built) - dense

            out[action] = self.measurements.part(name, compute)
        return out

    def cost_table(self, records: list[dict], curve: LossCurve, rho: np.ndarray) -> tuple[dict, list[dict]]:
        """Every candidate's effective drift (:func:`drift_table`) rescaled by the anchors
        (:func:`anchored_table`), and the anchors' rows."""
        s, grid = self.s, self.s.grid()
        table = drift_table(self.config, grid, records, curve, rho, tuple(s.measured_sparsities))
        return anchored_table(self.config, grid, table, curve, self.anchor_losses()) if s.anchors else (table, [])

    def score(self, config, params) -> dict:
        """Per-window NLL on the evaluation windows, the calibration NLL, and the zero-shot tasks if any (accuracy,
        its standard error and each item's 0/1 correctness, for paired comparisons)."""
        s = self.s
        calibration = window_nll_sums(config, params, self.calibration, batch_size=s.batch_size)
        out = {"window_nll": window_nll_sums(config, params, self.evaluation, batch_size=s.batch_size).tolist(),
               "calibration_nll": float(calibration.sum())}
        if s.tasks:
            results = evaluate(config, params, self.model.tokenizer, list(s.tasks), limit=s.task_limit)
            out["tasks"] = {name: {"acc": r.acc, "acc_stderr": r.acc_stderr, "items": r.items,
                                   "correct": [int(i.pred == i.gold) for i in r.predictions]}
                            for name, r in results.items()}
            out["mean_acc"] = float(np.mean([r.acc for r in results.values()]))
        return out

    def part_name(self, stem: str, plan: Plan) -> str:
        """``stem`` and a digest of ``plan``'s actions: a changed plan never reuses another plan's part."""
        return f"{stem}_{plan_digest(self.config, plan)}"

    def evaluate(self, name: str, plan: Plan, on_layer: Callable[[int], None] | None = None) -> dict:
        """Build ``plan`` (sequential calibration; ``on_layer(layers_done)``) and score it (a part keyed by the
        plan's content; a plan this run already scored under another name is read back, not rebuilt)."""
        digest = plan_digest(self.config, plan)
        done = next((n for n in self.run.parts() if n.startswith("eval_") and n.endswith(f"_{digest}")), None)
        if done is not None:  # the same plan scored under another name (an anchor that is also a baseline)
            return self.run.read(done)
        return self.run.part(self.part_name(f"eval_{name}", plan), lambda: self.score(*apply_plan(
            self.config, self.params, plan, self.statistics, batch_size=self.s.batch_size, on_layer=on_layer)))

    def calibration_loss(self, config, params) -> float:
        """Mean next-token NLL (nats per token) on the calibration windows."""
        w = self.calibration
        nll = window_nll_sums(config, params, w, batch_size=self.s.batch_size)
        return float(nll.sum() / self.calibration_scored)

    def layer_contributions(self, plan: Plan) -> dict[int, float]:
        """Measured on the planned model: calibration loss minus the loss with one layer restored (its matrices
        dense, or a removed block put back), the rest of the plan kept (a part)."""
        c, dense_blocks = self.config, self.params["blocks"]

        def compute():
            compressed = compress_plan(c, self.params, plan, self.statistics, batch_size=self.s.batch_size)
            base = self.calibration_loss(*remove_planned(c, compressed, plan))
            layers = sorted({layer for (layer, _), a in plan.actions.items() if a.op != "dense"} | set(plan.removed))
            out = {}
            with self.progress.stage("closed loop: layer contributions on the planned model", len(layers)) as update:
                for i, layer in enumerate(layers):
                    if layer in plan.removed:  # put the (dense, bypassed) block back
                        kept = Plan(tuple(t for t in plan.removed if t != layer), plan.actions)
                        restored = remove_planned(c, compressed, kept)
                    else:
                        blocks = jax.tree.map(lambda x, d, t=layer: x.at[t].set(d[t]), compressed["blocks"],
                                              dense_blocks)
                        restored = remove_planned(c, {**compressed, "blocks": blocks}, plan)
                    out[str(layer)] = base - self.calibration_loss(*restored)
                    update(i + 1)
            return out

        return {int(k): v for k, v in self.run.part(self.part_name("closed_loop_contributions", plan),
                                                     compute).items()}

    def dense(self) -> dict:
        return self.run.part("eval_dense", lambda: self.score(self.config, self.params))

    def paired_ratio(self, row: dict, reference: dict) -> tuple[float, list[float]]:
        """Perplexity of evaluated ``row`` over that of ``reference`` (same evaluation windows) and its paired 95%
        interval (windows resampled)."""
        per_window = self.evaluation.shape[1] - 1
        nll, ref = np.asarray(row["window_nll"], np.float64), np.asarray(reference["window_nll"], np.float64)
        lo, hi = ratio_ci(nll, ref, per_window, boots=self.s.boots, seed=self.s.seed)
        return float(np.exp((nll.sum() - ref.sum()) / (nll.size * per_window))), [lo, hi]

    def scored(self, row: dict, dense: dict) -> dict:
        """Perplexity with its 95% interval, ratio to dense with its paired interval, measured loss increases."""
        s, per_window = self.s, self.evaluation.shape[1] - 1
        nll, ref = np.asarray(row["window_nll"], np.float64), np.asarray(dense["window_nll"], np.float64)
        delta = float((nll.sum() - ref.sum()) / (nll.size * per_window))
        lo, hi = ratio_ci(nll, ref, per_window, boots=s.boots, seed=s.seed)
        return {"perplexity": float(np.exp(nll.sum() / (nll.size * per_window))),
                "perplexity_ci": perplexity_ci(nll, per_window, boots=s.boots, seed=s.seed),
                "ratio": float(np.exp(delta)), "ratio_ci": [lo, hi], "measured_delta_loss": delta,
                "measured_delta_loss_calibration": (row["calibration_nll"] - dense["calibration_nll"])
                / self.calibration_scored,
                **{k: row[k] for k in ("tasks", "mean_acc") if k in row}}


#: The settings the single-site measurements and dense signals depend on (not the target, apply or baselines).
MEASUREMENT_FIELDS: tuple[str, ...] = (
    "calib_text", "calib_tokens", "stats_tokens", "calib_seed", "seq_len", "methods", "sparsities",
    "measured_sparsities", "nm", "rank_fractions", "bits", "group_size", "removal", "delta_source", "fit_sites",
    "rho_eps", "samples", "seed", "batch_size", "config_batch")


def measurement_settings(settings: PlanSettings) -> dict:
    """The part of ``settings`` a shared measurement folder is keyed by (:data:`MEASUREMENT_FIELDS`)."""
    return {name: getattr(settings, name) for name in MEASUREMENT_FIELDS}


def run_plan_study(model, run: RunFolder, settings: PlanSettings = PlanSettings(), *,
                   progress: Progress = SILENT, measurements: RunFolder | None = None) -> dict:
    """Plan ``model`` at ``settings.target`` (and with ``apply`` verify it against the baselines); the summary.

    ``measurements`` is a run folder for the target-independent parts (dense signals, single-site
    measurements), opened with :func:`measurement_settings`, so that several targets share them; by default
    they are parts of ``run``."""
    s = settings
    config = model.config
    unit, fraction = parse_target(s.target)
    grid = s.grid()
    check_feasible(config, grid, s.target)
    started = time.perf_counter()
    study = PlanStudy(model, run, s, progress, measurements)
    rho = study.signal("rho")
    records = study.measure()
    fitted = [r for r in records if r["delta_loss"] is not None and r.get("fit", True)]
    fit = depth_fit(fitted, rho)
    curve = chosen_curve(fit, s.amplification)
    prop = propagated_drift(np.array([r["local_error"] for r in fitted]), np.array([r["layer"] for r in fitted]), rho,
                            curve.gamma)
    table, anchors = study.cost_table(records, curve, rho)
    budget = fraction * dense_model_cost(config).get(unit)
    plan = choose_plan(config, grid, table, curve, unit, budget, s.bins)
    predicted = predict(curve, plan_drifts(config, plan, table))
    summary = {
        "settings": dataclasses.asdict(s), "unit": unit, "fraction": fraction, "layers": config.num_layers,
        "rho": rho.tolist(), "loss_curve": curve.to_dict(), "depth_exponent": fit.to_dict(),
        "candidates": len(records), **({"anchors": anchors} if anchors else {}),
        "end_to_end": sum(r["delta_loss"] is not None for r in records), "fit_sites": len(fitted),
        "calibration_tokens": int(study.calibration.size),
        "loss_curve_fit": {"propagated_drift": prop.tolist(), "delta_loss": [r["delta_loss"] for r in fitted],
                           "local_error": [r["local_error"] for r in fitted],
                           "layer": [r["layer"] for r in fitted]},
        "plan": {**describe_plan(config, plan), "predicted_delta_loss": predicted,
                 "predicted_ratio": float(np.exp(predicted))},
    }
    if s.apply:
        dense = study.dense()
        summary["dense"] = study.scored(dense, dense)
        L = config.num_layers
        with progress.stage("planned model: sequential calibration (layers)", L) as update:
            raw = {"plan": study.evaluate("plan", plan, on_layer=update)}
        summary["plan"].update(study.scored(raw["plan"], dense))
        rows = []
        with progress.stage("baselines at the same budget (layers)", len(s.baselines) * L) as update:
            for i, name in enumerate(s.baselines):
                b = baseline_plans.baseline_plan(name, config, unit, fraction, study.signal, s.schedule)
                if isinstance(b, str):
                    rows.append({"name": name, "skipped": b})
                else:
                    raw[name] = study.evaluate(name, b, on_layer=lambda n, i=i: update(i * L + n))
                    row = {"name": name, **describe_plan(config, b), **study.scored(raw[name], dense),
                           "predicted_delta_loss": predicted_or_none(config, b, table, curve)}
                    row.pop("sites")
                    rows.append(row)
                update((i + 1) * L)
        summary["baselines"] = rows
        done = [r for r in rows if "ratio" in r]
        if done:
            best = min(done, key=lambda r: r["perplexity"])
            summary["best_baseline"] = best["name"]
            summary["plan_vs_best_baseline"], summary["plan_vs_best_baseline_ci"] = study.paired_ratio(
                raw["plan"], raw[best["name"]])
    if s.apply and s.amplification != "profile":
        summary["profile_plan"] = profile_comparison(study, records, fit.profile, rho, unit, budget, plan,
                                                     raw["plan"], dense)
    if s.apply and anchors:
        raw_table = drift_table(config, grid, records, curve, rho, tuple(s.measured_sparsities))
        summary["unanchored_plan"] = anchor_comparison(study, raw_table, curve, unit, budget, plan, raw["plan"],
                                                       dense)
    if s.apply and s.closed_loop:
        summary["closed_loop"] = closed_loop(study, plan, table, curve, unit, budget, dense)
    summary["seconds_this_run"] = time.perf_counter() - started
    return summary


def profile_comparison(study: PlanStudy, records: list[dict], curve: LossCurve, rho: np.ndarray, unit: str,
                       budget: float, plan: Plan, evaluated: dict, dense: dict) -> dict:
    """The plan the cost model chooses with ``gamma = 1`` (the profile as is), evaluated against the fitted plan:
    did fitting the depth exponent help? Perplexity ratio fitted / profile with its paired interval."""
    s = study.s
    table, _ = study.cost_table(records, curve, rho)
    other = choose_plan(study.config, s.grid(), table, curve, unit, budget, s.bins)
    return {"loss_curve": curve.to_dict(), **other_plan(study, other, plan, evaluated, dense, curve, table,
                                                        "fitted_vs_profile")}


def anchor_comparison(study: PlanStudy, table: dict, curve: LossCurve, unit: str, budget: float, plan: Plan,
                      evaluated: dict, dense: dict) -> dict:
    """The plan the cost model chooses without the anchors (single sites as measured), evaluated against the
    anchored plan: did the anchors help? Perplexity ratio anchored / unanchored with its paired interval."""
    other = choose_plan(study.config, study.s.grid(), table, curve, unit, budget, study.s.bins)
    return other_plan(study, other, plan, evaluated, dense, curve, table, "anchored_vs_unanchored")


def other_plan(study: PlanStudy, other: Plan, plan: Plan, evaluated: dict, dense: dict, curve: LossCurve,
               table: dict, ratio_name: str) -> dict:
    """``same_plan``; where ``other`` differs from ``plan``: ``other`` described, evaluated and priced on ``table``,
    and ``ratio_name`` (the plan's perplexity over ``other``'s) with ``ratio_name + "_ci"``, its paired interval."""
    if other == plan:
        return {"same_plan": True}
    row = study.evaluate("plan", other)
    ratio, ci = study.paired_ratio(evaluated, row)
    described = describe_plan(study.config, other)
    described.pop("sites")
    return {"same_plan": False, **described, **study.scored(row, dense),
            "predicted_delta_loss": predict(curve, plan_drifts(study.config, other, table)),
            ratio_name: ratio, f"{ratio_name}_ci": ci}


def closed_loop(study: PlanStudy, plan: Plan, table: dict, curve: LossCurve, unit: str, budget: float,
                dense: dict) -> dict:
    """Correct the cost model where it erred most on the verified plan, re-plan once, verify the new plan.

    The layer contributions measured on the planned model (calibration windows) are set against the predicted
    ones (:func:`~rhojax.plan.cost_model.layer_marginals`); the ``replan_layers`` layers with the largest ratio
    have their candidates' predicted loss scaled by it (:func:`corrected_table`) before the plan is chosen again."""
    s, config = study.s, study.config
    predicted = layer_marginals(curve, layer_drifts(plan, table))
    measured = study.layer_contributions(plan)
    factors = correction_factors(predicted, measured, s.replan_layers)
    fixed = corrected_table(table, factors, curve)
    replan = choose_plan(config, study.s.grid(), fixed, curve, unit, budget, s.bins)
    out = {"predicted_contribution": {str(k): v for k, v in predicted.items()},
           "measured_contribution": {str(k): v for k, v in measured.items()},
           "corrected_layers": {str(k): v for k, v in factors.items()},
           "changed": replan != plan}
    if replan == plan:
        return {**out, "helped": None, "note": "the corrected cost model chose the same plan"}
    row = study.evaluate("replan", replan)
    ratio, (lo, hi) = study.paired_ratio(row, study.evaluate("plan", plan))
    return {**out, "replan": {**describe_plan(config, replan),
                              "predicted_delta_loss": predict(curve, plan_drifts(config, replan, fixed)),
                              **study.scored(row, dense)},
            "replan_vs_plan": ratio, "replan_vs_plan_ci": [lo, hi], "helped": bool(ratio < 1.0),
            "significant": bool(hi < 1.0 or lo > 1.0)}
