"""The plan study: measure, predict, optimise, and with ``apply`` build the plan and its baselines and evaluate.

Steps (each a part of a :class:`~rhojax.runs.RunFolder`, so a killed run resumes):

1. calibration windows (``calib_text``, its statistics split): input statistics of every matrix, the
   dense states, the contraction profile ``rho`` (aggregate, Gaussian perturbations of size ``rho_eps``);
2. every candidate ``(site, action)`` measured alone (:mod:`rhojax.plan.measure`): its local error, and its
   loss increase end to end (all of them with ``delta_source="measured"``, a seeded sample of ``fit_sites``
   with ``"propagated"``);
3. the loss curve fitted (with the depth exponent ``gamma`` of the amplification where the sites call for it)
   and each candidate's effective drift formed (:mod:`rhojax.plan.cost_model`, :func:`~rhojax.plan.choose.drift_table`),
   sparsities that were not measured interpolated in level;
4. the plan of least predicted loss increase within the budget (:func:`~rhojax.plan.choose.choose_plan`, solved
   by :mod:`rhojax.plan.optimize`);
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
from pathlib import Path

import jax
import numpy as np

from rhojax.allocation.metrics import layer_alphas, outlier_ratios
from rhojax.compress import calibration_stats
from rhojax.depth.influence import block_influence
from rhojax.depth.scores import layer_rho, rho_of
from rhojax.eval.intervals import perplexity_ci, ratio_ci
from rhojax.eval.perplexity import window_nll_sums
from rhojax.eval.tasks import evaluate
from rhojax.plan import baselines as baseline_plans
from rhojax.plan.actions import (
    REMOVE,
    Action,
    Plan,
    apply_plan,
    compress_plan,
    dense_model_cost,
    remove_planned,
)
from rhojax.plan.choose import (
    anchor_plan,
    anchored_table,
    candidates,
    check_feasible,
    choose_plan,
    chosen_curve,
    corrected_table,
    depth_fit,
    drift_table,
    layer_drifts,
    plan_drifts,
    predicted_or_none,
)
from rhojax.plan.cost_model import (
    LossCurve,
    correction_factors,
    layer_marginals,
    predict,
    propagated_drift,
)
from rhojax.plan.measure import measure_layer
from rhojax.plan.settings import PlanSettings, parse_target
from rhojax.progress import SILENT, Progress
from rhojax.runs import RunFolder
from rhojax.sensitivity.sweep import dense_reference


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


def run_plan_study(model, run: RunFolder | str | Path, settings: PlanSettings = PlanSettings(), *,
                   progress: Progress = SILENT, measurements: RunFolder | None = None) -> dict:
    """Plan ``model`` (a :class:`rhojax.Model`) at ``settings.target`` (and with ``apply`` verify it against the
    baselines); the summary that ``rhojax plan`` writes as plan.json.

    ``run``: a :class:`~rhojax.runs.RunFolder` or a folder path, where every step is saved as it finishes (a
    rerun with the same model and settings resumes; other settings are refused). ``measurements`` is a run
    folder for the target-independent parts (dense signals, single-site measurements), opened with
    :func:`measurement_settings`, so that several targets share them; by default they are parts of ``run``."""
    s = settings
    if not isinstance(run, RunFolder):
        run = RunFolder.for_study(run, model, settings)
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
