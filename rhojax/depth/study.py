"""The depth-pruning and sparsity-allocation study, and the single runs of ``prune-depth`` and ``allocate``.

Protocol shared by all three: scores and calibration statistics come from windows of ``calib_text``
(its :func:`~rhojax.data.corpora.statistics_split`), perplexity from the evaluation split of
``text``, accuracy from the task validation items; one PRNG seed feeds every Gaussian perturbation.
Decisions use the aggregate rho (the papers' reading); the token-wise rho is measured and kept.

Every unit of work is a part of a :class:`~rhojax.runs.RunFolder` (each dense signal group, the
dense evaluation, each criterion's removal order, each ``(criterion, k)`` row, each
``(sparsity, method, schedule)`` cell), so a killed run resumes where it stopped. Every evaluation
keeps its per-window NLL; the summary gives each row its perplexity with a 95% bootstrap interval
and its perplexity ratio to the dense model with a paired 95% interval (windows resampled).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from rhojax.allocation import (
    absorption_corrected,
    alpha_pruning,
    depth_increasing_sparsity,
    layer_alphas,
    outlier_ratios,
    owl,
    rho_guided,
    uniform,
)
from rhojax.allocation.apply import WITHIN_LAYER_METHODS, layer_sparsity, prune_with_allocation
from rhojax.allocation.schedules import ALPHA_EPS, OWL_LAMBDA
from rhojax.compress import calibration_stats
from rhojax.data.corpora import statistics_split
from rhojax.depth.influence import block_influence
from rhojax.depth.prune import remove_layers
from rhojax.depth.removal import RHO_ORDERS, criterion_weight, iterative_removal, removal_order
from rhojax.depth.scores import VERSIONS, layer_absorption, layer_rho, rho_of
from rhojax.errors import RhojaxError
from rhojax.eval.intervals import perplexity_ci, ratio_ci
from rhojax.eval.perplexity import window_nll_sums
from rhojax.eval.task_data import parse_task_names
from rhojax.eval.tasks import evaluate
from rhojax.progress import SILENT, Progress
from rhojax.propagation.absorption import clipped_log
from rhojax.runs import RunFolder
from rhojax.settings import TextSettings, setting

#: Dense per-layer signals and the measurement that produces each (one measurement fills its whole group).
SIGNAL_GROUPS: dict[str, str] = {
    "rho_aggregate": "rho", "rho_tokenwise": "rho", "bi": "bi", "bi_without_bos": "bi",
    "outlier_ratio": "outliers", "alpha": "alpha", "absorption_u": "absorption", "absorption_token_r": "absorption",
}
#: The measurement groups, in order.
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(SIGNAL_GROUPS.values()))
#: Groups the study always measures: the depth figure draws rho and Block Influence.
FIGURE_GROUPS: tuple[str, ...] = ("rho", "bi")
SCHEDULES: tuple[str, ...] = ("uniform", "depth", "owl", "alpha", "rho", "owl_absorption", "alpha_absorption",
                              "owl_absorption_tokenwise", "alpha_absorption_tokenwise")


@dataclasses.dataclass(frozen=True)
class DepthCriterion:
    """One way to choose layers: ``lam * rank_rho + (1 - lam) * rank_BI``, one-shot or re-scored (iterative)."""

    name: str
    lam: float
    rho_order: str = "ascending"
    version: str = "aggregate"
    iterative: bool = False


STUDY_CRITERIA: tuple[DepthCriterion, ...] = (
    DepthCriterion("bi", 0.0),
    DepthCriterion("rho_ascending", 1.0),
    DepthCriterion("rho_descending", 1.0, "descending"),
    DepthCriterion("rho_ascending_tokenwise", 1.0, version="tokenwise"),
    DepthCriterion("blend_0.25", 0.25),
    DepthCriterion("blend_0.5", 0.5),
    DepthCriterion("blend_0.75", 0.75),
    DepthCriterion("bi_iterative", 0.0, iterative=True),
    DepthCriterion("rho_ascending_iterative", 1.0, iterative=True),
)
CRITERIA_BY_NAME: dict[str, DepthCriterion] = {c.name: c for c in STUDY_CRITERIA}


def _check_choice(argument: str, value: str, choices) -> None:
    if value not in choices:
        raise RhojaxError(f"{argument} {value!r}: choose one of {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class PruneSettings(TextSettings):
    """Texts, token budgets, perturbation sizes and evaluation set shared by prune-depth, allocate and the study
    (scores and pruning statistics read ``calib_text``, perplexity the evaluation split of ``text``)."""

    rho_eps: float = setting(0.1, "Relative perturbation size of rho.")
    absorption_eps: float = setting(0.5, "Relative perturbation size of the absorption u_l.")
    samples: int = setting(4, "Gaussian perturbation samples per layer.")
    tasks: tuple[str, ...] = setting(("arc_easy", "piqa"), "Zero-shot tasks ('all' for every task, empty for none).")
    task_limit: int = setting(100, "First N items of each task.")
    seed: int = setting(0, "Seed of every perturbation and bootstrap.")
    batch_size: int = setting(4, "Windows per compiled call.")
    boots: int = setting(1000, "Bootstrap resamples of each perplexity interval.")

    def __post_init__(self) -> None:
        if self.tasks:
            parse_task_names(list(self.tasks))


@dataclasses.dataclass(frozen=True)
class PruneDepthSettings(PruneSettings):
    """One physical depth pruning: how many layers, chosen by which criterion."""

    remove: int = setting(2, "Number of layers to delete.")
    criterion: str = setting("rho", "rho (|rho - 1|), bi (Block Influence) or blend (rank blend, needs lam).")
    lam: float | None = setting(None, "Blend weight lambda of the rho rank, in [0, 1] (criterion blend).")
    rho_order: str = setting("ascending", "Remove the smallest |rho - 1| first (ascending) or the largest "
                             "(descending).")
    rho_version: str = setting("aggregate", "aggregate or tokenwise rho.")
    iterative: bool = setting(False, "Re-score the pruned model after each removal.")

    def __post_init__(self) -> None:
        super().__post_init__()
        criterion_weight(self.criterion, self.lam)
        _check_choice("rho_order", self.rho_order, RHO_ORDERS)
        _check_choice("rho_version", self.rho_version, VERSIONS)
        if self.remove < 1:
            raise RhojaxError(f"remove {self.remove}: delete at least one layer")

    def depth_criterion(self) -> DepthCriterion:
        return DepthCriterion(self.criterion, criterion_weight(self.criterion, self.lam), self.rho_order,
                              self.rho_version, self.iterative)


@dataclasses.dataclass(frozen=True)
class AllocateSettings(PruneSettings):
    """One layer-wise sparsity allocation: the target mean, the schedule and the within-layer method."""

    sparsity: float = setting(0.5, "Target mean sparsity, e.g. 0.5 or 0.7.")
    method: str = setting("wanda", "Within-layer method: wanda or sparsegpt.")
    schedule: str = setting("owl", "Layer-wise schedule: " + ", ".join(SCHEDULES) + ".")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("method", self.method, WITHIN_LAYER_METHODS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        if not 0.0 < self.sparsity < 1.0:
            raise RhojaxError(f"sparsity {self.sparsity}: the target mean must lie in (0, 1)")


@dataclasses.dataclass(frozen=True)
class DepthSettings(PruneSettings):
    """The whole study: depth rows for every criterion and k, allocation cells for every sparsity, method
    and schedule (zero-shot tasks for the dense model, for k in ``task_ks`` and with ``allocation_tasks``)."""

    ks: tuple[int, ...] = setting((2, 4, 6, 8), "Numbers of layers removed.")
    criteria: tuple[str, ...] = setting(tuple(CRITERIA_BY_NAME), "Depth criteria: " + ", ".join(CRITERIA_BY_NAME) + ".")
    sparsities: tuple[float, ...] = setting((0.7, 0.5), "Target mean sparsities of the allocation table.")
    methods: tuple[str, ...] = setting(WITHIN_LAYER_METHODS, "Within-layer methods: wanda, sparsegpt.")
    schedules: tuple[str, ...] = setting(SCHEDULES, "Layer-wise schedules of the allocation table.")
    task_ks: tuple[int, ...] = setting((2, 4, 6, 8), "Depth rows (k) that also score the zero-shot tasks.")
    allocation_tasks: bool = setting(False, "Also score the zero-shot tasks of every allocation.")
    signals: tuple[str, ...] = setting(GROUPS,
                                       "Dense signal groups to measure and report besides rho and bi (the "
                                       "criteria and schedules measure the groups they need anyway): "
                                       + ", ".join(GROUPS) + ".")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in self.signals:
            _check_choice("signals", name, GROUPS)
        for name in self.criteria:
            _check_choice("criteria", name, tuple(CRITERIA_BY_NAME))
        for name in self.methods:
            _check_choice("methods", name, WITHIN_LAYER_METHODS)
        for name in self.schedules:
            _check_choice("schedules", name, SCHEDULES)
        if any(k < 1 for k in self.ks):
            raise RhojaxError(f"ks {self.ks}: remove at least one layer in every row")


def _nll(values) -> np.ndarray:
    """Per-window NLL read back from JSON (a diverged window was written as null)."""
    return np.array([np.inf if v is None else v for v in values], np.float64)


class Study:
    """One model under one :class:`PruneSettings` in one run folder: windows built on first use, dense signals
    and evaluations computed once each (as parts of ``run``)."""

    def __init__(self, model, run: RunFolder, settings: PruneSettings, progress: Progress = SILENT):
        self.model = model
        self.run = run
        self.settings = settings
        self.progress = progress
        self.key = jax.random.PRNGKey(settings.seed)
        self.cache: dict[str, np.ndarray] = {}

    @functools.cached_property
    def calibration(self) -> np.ndarray:
        return self.settings.calibration_windows(self.model.tokenizer)

    @functools.cached_property
    def evaluation(self) -> np.ndarray:
        return self.settings.evaluation_windows(self.model.tokenizer)

    def rho_profile(self, config, params):
        return layer_rho(config, params, self.calibration, self.key, eps=self.settings.rho_eps,
                         samples=self.settings.samples)

    def _measure(self, group: str) -> dict[str, np.ndarray]:
        config, params, s = self.model.config, self.model.params, self.settings
        if group == "rho":
            profile = self.rho_profile(config, params)
            return {"rho_aggregate": rho_of(profile, "aggregate"), "rho_tokenwise": rho_of(profile, "tokenwise")}
        if group == "bi":
            bi = block_influence(config, params, self.calibration, batch_size=s.batch_size)
            return {"bi": bi.bi, "bi_without_bos": bi.bi_without_bos}
        if group == "outliers":
            stats = calibration_stats(config, params, self.calibration, batch_size=s.batch_size)
            return {"outlier_ratio": outlier_ratios(config, params, stats)}
        if group == "alpha":
            return {"alpha": layer_alphas(config, params)[0]}
        result = layer_absorption(config, params, self.calibration, self.key, eps=s.absorption_eps,
                                  samples=s.samples)
        return {"absorption_u": result.u[0], "absorption_token_r": result.token_r[0]}

    def signal(self, name: str) -> np.ndarray:
        """A dense per-layer signal (see :data:`SIGNAL_GROUPS`); its group is the part ``signals_<group>``."""
        if name not in self.cache:
            group = SIGNAL_GROUPS[name]
            values = self.run.part(f"signals_{group}", lambda: self._measure(group))
            self.cache.update({k: np.asarray(v, np.float64) for k, v in values.items()})
        return self.cache[name]

    def signals(self, names=tuple(SIGNAL_GROUPS)) -> dict[str, list]:
        return {name: self.signal(name).tolist() for name in names}

    def removal(self, criterion: DepthCriterion, k: int) -> list[int]:
        """The ``k`` layers to remove by ``criterion``, in removal order (original numbering)."""
        c = criterion

        def order(config, params, dense: bool):
            rho = bi = None
            if c.lam > 0:
                rho = self.signal(f"rho_{c.version}") if dense else rho_of(self.rho_profile(config, params), c.version)
            if c.lam < 1:
                bi = self.signal("bi") if dense else block_influence(
                    config, params, self.calibration, batch_size=self.settings.batch_size).bi
            return removal_order(rho, bi, c.lam, c.rho_order)

        if not c.iterative:
            return [int(i) for i in order(self.model.config, self.model.params, True)[:k]]
        full = self.model.config.num_layers
        return iterative_removal(self.model.config, self.model.params, k,
                                 lambda config, params: order(config, params, config.num_layers == full)[0])

    def schedule(self, name: str, sparsity: float) -> np.ndarray:
        """Per-layer sparsities (L,) of the named schedule at mean ``sparsity``."""
        _check_choice("schedule", name, SCHEDULES)
        num, sig = self.model.config.num_layers, self.signal
        if name == "uniform":
            return uniform(num, sparsity)
        if name == "depth":
            return depth_increasing_sparsity(num, sparsity)
        if name == "rho":
            return rho_guided(sig("rho_aggregate"), sparsity)
        base, lam = ((owl(sig("outlier_ratio"), sparsity), OWL_LAMBDA) if name.startswith("owl")
                     else (alpha_pruning(sig("alpha"), sparsity), ALPHA_EPS))
        if "absorption" not in name:
            return base
        u = clipped_log(sig("absorption_token_r")) if name.endswith("tokenwise") else sig("absorption_u")
        return absorption_corrected(base, u, sparsity, lam)

    def evaluate(self, config, params, *, tasks: bool = True) -> dict:
        """Evaluation-split perplexity with per-window NLL and, with ``tasks``, zero-shot accuracy."""
        s = self.settings
        nll = window_nll_sums(config, params, self.evaluation, batch_size=s.batch_size)
        scored = nll.size * (self.evaluation.shape[1] - 1)
        out = {"perplexity": float(np.exp(nll.sum() / scored)), "scored_tokens": int(scored), "window_nll": nll}
        if tasks and s.tasks:
            results = evaluate(config, params, self.model.tokenizer, list(s.tasks), limit=s.task_limit)
            out["tasks"] = {name: {"acc": r.acc, "acc_stderr": r.acc_stderr, "acc_norm": r.acc_norm,
                                   "items": r.items} for name, r in results.items()}
            out["mean_acc"] = float(np.mean([r.acc for r in results.values()]))
        return out

    def dense(self) -> dict:
        """The dense model's evaluation (part ``dense``; tasks included when any are set)."""
        return self.run.part("dense", lambda: self.evaluate(self.model.config, self.model.params))

    def depth_row(self, criterion: DepthCriterion, removed: list[int], *, tasks: bool) -> dict:
        """Evaluate the model without the layers ``removed`` (one row of the depth table)."""
        config, params = remove_layers(self.model.config, self.model.params, removed)
        return {"criterion": criterion.name, "k": len(removed), "removed_layers": removed,
                **dataclasses.asdict(criterion), **self.evaluate(config, params, tasks=tasks)}

    def pruned_params(self, ratios: np.ndarray, method: str, on_layer=None) -> dict:
        return prune_with_allocation(self.model.config, self.model.params, np.asarray(ratios), method,
                                     self.calibration, batch_size=self.settings.batch_size, on_layer=on_layer)

    def allocation(self, sparsity: float, method: str, schedule: str, *, tasks: bool, on_layer=None) -> dict:
        """Schedule, prune and evaluate one ``(sparsity, method, schedule)`` cell."""
        ratios = self.schedule(schedule, sparsity)
        params = self.pruned_params(ratios, method, on_layer)
        realised = layer_sparsity(self.model.config, params)
        return {"sparsity": sparsity, "method": method, "schedule": schedule, "ratios": ratios,
                "realised": realised, "realised_mean": float(realised.mean()),
                **self.evaluate(self.model.config, params, tasks=tasks)}

    def with_intervals(self, row: dict, dense: dict | None = None) -> dict:
        """``row`` with its 95% perplexity interval and, against ``dense``, its ratio and paired 95% interval."""
        s = self.settings
        nll, per_window = _nll(row["window_nll"]), s.seq_len - 1
        out = {**row, "perplexity_ci": perplexity_ci(nll, per_window, boots=s.boots, seed=s.seed)}
        if dense is not None:
            ref = _nll(dense["window_nll"])
            out["ratio"] = float(np.exp((nll.sum() - ref.sum()) / (nll.size * per_window)))
            out["ratio_ci"] = ratio_ci(nll, ref, per_window, boots=s.boots, seed=s.seed)
        return out


def run_prune_depth(model, run: RunFolder, settings: PruneDepthSettings = PruneDepthSettings(), *,
                    progress: Progress = SILENT) -> dict:
    """Choose ``settings.remove`` layers by ``settings.criterion`` and evaluate the model without them.

    Returns the removal (original layer numbers, in removal order), the dense scores and the dense and
    pruned evaluations with intervals. The pruned model is ``remove_layers(config, params, removed_layers)``.
    """
    s = settings
    study = Study(model, run, s, progress)
    with progress.stage(f"prune-depth ({s.criterion}, {s.remove} layers)", 3) as update:
        removed = run.part("removal", lambda: study.removal(s.depth_criterion(), s.remove))
        update(1)
        dense = study.dense()
        update(2)
        pruned = run.part("pruned", lambda: study.evaluate(*remove_layers(model.config, model.params, removed)))
        update(3)
    return {
        "settings": dataclasses.asdict(s),
        "criterion": dataclasses.asdict(s.depth_criterion()),
        "removed_layers": removed,
        "remaining_layers": model.config.num_layers - len(removed),
        "scores": study.signals(("rho_aggregate", "rho_tokenwise", "bi", "bi_without_bos")),
        "dense": study.with_intervals(dense),
        "pruned": study.with_intervals(pruned, dense),
    }


def run_allocation(model, run: RunFolder, settings: AllocateSettings = AllocateSettings(), *,
                   progress: Progress = SILENT) -> dict:
    """Prune ``model`` to a mean ``settings.sparsity`` with the layer-wise ``settings.schedule`` and evaluate it.

    The pruned parameters are ``Study(model, run, settings).pruned_params(summary["ratios"], method)``.
    """
    s = settings
    study = Study(model, run, s, progress)
    L = model.config.num_layers
    with progress.stage(f"allocate ({s.schedule} / {s.method} at {s.sparsity:g})", L + 1) as update:
        dense = study.dense()
        record = run.part("allocation", lambda: study.allocation(s.sparsity, s.method, s.schedule, tasks=True,
                                                                 on_layer=update))
        update(L + 1)
    return {"settings": dataclasses.asdict(s), "dense": study.with_intervals(dense),
            **study.with_intervals(record, dense)}


def run_depth_study(model, run: RunFolder, settings: DepthSettings = DepthSettings(), *,
                    progress: Progress = SILENT) -> dict:
    """The depth-pruning and allocation tables of ``model`` (run or resumed in ``run``); returns the summary.

    Summary keys: ``settings``, ``layers``, ``scored_tokens``, ``signals`` (dense per-layer scores),
    ``dense`` (dense evaluation), ``depth`` (one row per criterion and k: removed layers, perplexity,
    ``perplexity_ci``, ``ratio``, ``ratio_ci``, tasks where scored) and ``allocation`` (one row per
    sparsity, method and schedule: ratios, realised sparsity, the same perplexity fields).
    """
    s = settings
    study = Study(model, run, s, progress)
    L = model.config.num_layers
    groups = set(FIGURE_GROUPS) | set(s.signals)
    measured = [name for name, group in SIGNAL_GROUPS.items() if group in groups]
    with progress.stage("depth: dense signals and evaluation", len(measured) + 1) as update:
        for i, name in enumerate(measured):
            study.signal(name)
            update(i + 1)
        dense = study.dense()
        update(len(measured) + 1)

    depth = []
    criteria = [CRITERIA_BY_NAME[name] for name in s.criteria] if s.ks else []
    with progress.stage("depth: layer removal (criterion x k)", len(criteria) * len(s.ks)) as update:
        for c in criteria:
            order = run.part(f"order_{c.name}", functools.partial(study.removal, c, max(s.ks)))
            for k in s.ks:
                depth.append(run.part(f"depth_{c.name}_k{k}", functools.partial(
                    study.depth_row, c, order[:k], tasks=k in s.task_ks)))
                update(len(depth))

    cells = [(sp, m, sc) for m in s.methods for sp in s.sparsities for sc in s.schedules]
    allocation = []
    with progress.stage("allocation: prune and evaluate (layer steps)", len(cells) * (L + 1)) as update:
        for i, (sparsity, method, schedule) in enumerate(cells):
            base = i * (L + 1)
            allocation.append(run.part(f"allocation_{method}_{sparsity:g}_{schedule}", functools.partial(
                study.allocation, sparsity, method, schedule, tasks=s.allocation_tasks,
                on_layer=lambda n, base=base: update(base + n))))
            update(base + L + 1)

    return {
        "settings": dataclasses.asdict(s),
        "split": {"statistics": statistics_split(s.calib_text), "evaluation": "evaluation"},
        "layers": L,
        "scored_tokens": dense["scored_tokens"],
        "signals": study.signals([name for name in SIGNAL_GROUPS if name in study.cache]),
        "dense": study.with_intervals(dense),
        "depth": [study.with_intervals(r, dense) for r in depth],
        "allocation": [study.with_intervals(r, dense) for r in allocation],
    }
