"""``rhojax prune-depth``, ``rhojax allocate`` and :func:`run_depth_study` (the part ``rhojax analyze`` runs).

Protocol shared by all three: scores and calibration statistics come from CALIBRATION-split windows,
perplexity from EVALUATION-split windows, accuracy from the task validation items; one PRNG seed
feeds every Gaussian perturbation. Decisions use the aggregate rho (the papers' reading); the
token-wise rho is measured and saved alongside.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np
import typer

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
from rhojax.commands.common import DTYPE, MODEL, console, guarded, output_dir, progress_bar, run_metadata
from rhojax.compress import calibration_stats
from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows
from rhojax.depth import (
    RHO_ORDERS,
    block_influence,
    iterative_removal,
    layer_absorption,
    layer_rho,
    removal_order,
    remove_layers,
    rho_of,
)
from rhojax.errors import RhojaxError
from rhojax.eval.perplexity import perplexity
from rhojax.eval.tasks import evaluate
from rhojax.io.resolve import Model, load_model
from rhojax.io.save_hf import save_hf
from rhojax.propagation.absorption import clipped_log
from rhojax.report import depth_figures as figures
from rhojax.report.jsonio import append_jsonl, read_jsonl, write_json, write_jsonl

CRITERIA: dict[str, float | None] = {"rho": 1.0, "bi": 0.0, "blend": None}
#: Dense per-layer signals and the measurement that produces each (one measurement fills its whole group).
SIGNAL_GROUPS: dict[str, str] = {
    "rho_aggregate": "rho", "rho_tokenwise": "rho", "bi": "bi", "bi_without_bos": "bi",
    "outlier_ratio": "outliers", "alpha": "alpha", "absorption_u": "absorption", "absorption_token_r": "absorption",
}
SCHEDULES: tuple[str, ...] = ("uniform", "depth", "owl", "alpha", "rho", "owl_absorption", "alpha_absorption",
                              "owl_absorption_tokenwise", "alpha_absorption_tokenwise")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Token budgets, perturbation sizes and evaluation set of a run (all saved with the results)."""

    calib_tokens: int = 2048
    eval_tokens: int = 4096
    seq_len: int = DEFAULT_SEQ_LEN
    rho_eps: float = 0.1
    absorption_eps: float = 0.5
    samples: int = 4
    tasks: str = "arc_easy,piqa"
    task_limit: int = 100
    seed: int = 0
    batch_size: int = 4


class Study:
    """One model under one :class:`Settings`: windows and dense per-layer signals computed once, on first
    use, or taken from ``signals`` (a saved ``signals.json``) when resuming."""

    def __init__(self, model: Model, settings: Settings, signals: dict | None = None):
        self.model = model
        self.settings = settings
        self.key = jax.random.PRNGKey(settings.seed)
        self.cache: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in (signals or {}).items()
                                             if k in SIGNAL_GROUPS}

    @functools.cached_property
    def calibration(self) -> np.ndarray:
        s = self.settings
        return corpus_windows(self.model.tokenizer, "wiki", "calibration", s.calib_tokens, s.seq_len)

    @functools.cached_property
    def evaluation(self) -> np.ndarray:
        s = self.settings
        return corpus_windows(self.model.tokenizer, "wiki", "evaluation", s.eval_tokens, s.seq_len)

    def rho_profile(self, config, params):
        return layer_rho(config, params, self.calibration, self.key, eps=self.settings.rho_eps,
                         samples=self.settings.samples)

    def block_influence(self, config, params):
        return block_influence(config, params, self.calibration, batch_size=self.settings.batch_size)

    def _measure(self, group: str) -> dict[str, np.ndarray]:
        config, params, s = self.model.config, self.model.params, self.settings
        console.print(f"measuring {group} on the dense model")
        if group == "rho":
            profile = self.rho_profile(config, params)
            return {"rho_aggregate": rho_of(profile, "aggregate"), "rho_tokenwise": rho_of(profile, "tokenwise")}
        if group == "bi":
            bi = self.block_influence(config, params)
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
        """A dense per-layer signal (see :data:`SIGNAL_GROUPS`), measured with its group on first use."""
        if name not in self.cache:
            self.cache.update(self._measure(SIGNAL_GROUPS[name]))
        return self.cache[name]

    def signals(self) -> dict:
        """Every dense per-layer signal, for the result files and figures."""
        return {name: self.signal(name) for name in SIGNAL_GROUPS}

    def removal(self, lam: float, k: int, *, rho_order: str, version: str, iterative: bool) -> list[int]:
        """The ``k`` layers to remove by ``lam * rank_rho + (1 - lam) * rank_BI``, one-shot or re-scored."""
        def order(config, params, dense: bool):
            rho = bi = None
            if lam > 0:
                rho = self.signal(f"rho_{version}") if dense else rho_of(self.rho_profile(config, params), version)
            if lam < 1:
                bi = self.signal("bi") if dense else self.block_influence(config, params).bi
            return removal_order(rho, bi, lam, rho_order)

        if not iterative:
            return [int(i) for i in order(self.model.config, self.model.params, True)[:k]]
        model = self.model

        def pick(config, params):
            return order(config, params, config.num_layers == model.config.num_layers)[0]

        return iterative_removal(model.config, model.params, k, pick)

    def schedule(self, name: str, sparsity: float) -> np.ndarray:
        num = self.model.config.num_layers
        sig = self.signal
        token_u = lambda: clipped_log(sig("absorption_token_r"))  # noqa: E731
        schedules = {
            "uniform": lambda: uniform(num, sparsity),
            "depth": lambda: depth_increasing_sparsity(num, sparsity),
            "owl": lambda: owl(sig("outlier_ratio"), sparsity),
            "alpha": lambda: alpha_pruning(sig("alpha"), sparsity),
            "rho": lambda: rho_guided(sig("rho_aggregate"), sparsity),
            "owl_absorption": lambda: absorption_corrected(owl(sig("outlier_ratio"), sparsity), sig("absorption_u"),
                                                           sparsity, OWL_LAMBDA),
            "alpha_absorption": lambda: absorption_corrected(alpha_pruning(sig("alpha"), sparsity),
                                                             sig("absorption_u"), sparsity, ALPHA_EPS),
            "owl_absorption_tokenwise": lambda: absorption_corrected(owl(sig("outlier_ratio"), sparsity), token_u(),
                                                                     sparsity, OWL_LAMBDA),
            "alpha_absorption_tokenwise": lambda: absorption_corrected(alpha_pruning(sig("alpha"), sparsity),
                                                                       token_u(), sparsity, ALPHA_EPS),
        }
        if name not in schedules:
            raise RhojaxError(f"--schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
        return schedules[name]()

    def evaluate(self, config, params, *, tasks: bool = True) -> dict:
        """Evaluation-split perplexity and, with ``tasks``, zero-shot accuracy of ``(config, params)``."""
        s = self.settings
        with progress_bar(f"perplexity ({len(self.evaluation)} x {s.seq_len})", len(self.evaluation)) as update:
            ppl = perplexity(config, params, self.evaluation, batch_size=s.batch_size, on_batch=update)
        out = {"perplexity": ppl.perplexity, "scored_tokens": ppl.scored_tokens}
        if tasks and s.tasks:
            results = evaluate(config, params, self.model.tokenizer, s.tasks, limit=s.task_limit)
            out["tasks"] = {name: {"acc": r.acc, "acc_stderr": r.acc_stderr, "acc_norm": r.acc_norm,
                                   "items": r.items} for name, r in results.items()}
            out["mean_acc"] = float(np.mean([r.acc for r in results.values()]))
        return out

    def metadata(self, **extra) -> dict:
        return run_metadata(self.model, **dataclasses.asdict(self.settings), **extra)


def criterion_weight(criterion: str, lam: float | None) -> float:
    """The blend weight of rank_rho: 1 for rho, 0 for bi, ``--lambda`` for blend."""
    if criterion not in CRITERIA:
        raise RhojaxError(f"--criterion {criterion!r}: choose rho, bi or blend")
    if criterion == "blend":
        if lam is None:
            raise RhojaxError("--criterion blend needs --lambda L (weight of the rho rank, in [0, 1])")
        return lam
    return CRITERIA[criterion]


SETTINGS_OPTIONS = dict(
    calib_tokens=typer.Option(2048, "--calib-tokens", help="Calibration-split tokens for scores and statistics."),
    eval_tokens=typer.Option(4096, "--tokens", help="Evaluation-split tokens for perplexity."),
    seq_len=typer.Option(DEFAULT_SEQ_LEN, "--seq-len"),
    samples=typer.Option(4, "--samples", help="Gaussian perturbation samples per layer."),
    tasks=typer.Option("arc_easy,piqa", "--tasks", help="Zero-shot tasks (comma-separated, 'all', or '' for none)."),
    task_limit=typer.Option(100, "--task-limit", help="First N items of each task."),
    seed=typer.Option(0, "--seed"),
)


@guarded
def prune_depth(
    model: str = MODEL,
    remove: int = typer.Option(..., "--remove", help="Number of layers to delete."),
    criterion: str = typer.Option("rho", "--criterion", help="rho, bi or blend."),
    lam: float | None = typer.Option(None, "--lambda", help="Blend weight of the rho rank (criterion blend)."),
    rho_order: str = typer.Option("ascending", "--rho-order", help="Remove smallest |rho-1| first (ascending) "
                                  "or largest first (descending)."),
    rho_version: str = typer.Option("aggregate", "--rho-version", help="aggregate or tokenwise rho."),
    iterative: bool = typer.Option(False, "--iterative", help="Re-score the pruned model after each removal."),
    rho_eps: float = typer.Option(0.1, "--eps", help="Relative perturbation size for rho."),
    out: Path = typer.Option(..., "--out", help="Result folder (prune_depth.json, model/ with --save-model)."),
    save_model: bool = typer.Option(False, "--save-model", help="Also save the pruned model (HF safetensors)."),
    dtype: str = DTYPE,
    calib_tokens: int = SETTINGS_OPTIONS["calib_tokens"],
    eval_tokens: int = SETTINGS_OPTIONS["eval_tokens"],
    seq_len: int = SETTINGS_OPTIONS["seq_len"],
    samples: int = SETTINGS_OPTIONS["samples"],
    tasks: str = SETTINGS_OPTIONS["tasks"],
    task_limit: int = SETTINGS_OPTIONS["task_limit"],
    seed: int = SETTINGS_OPTIONS["seed"],
) -> None:
    """Physically delete --remove layers of MODEL chosen by |rho - 1|, Block Influence or their rank blend."""
    lam = criterion_weight(criterion, lam)
    if rho_order not in RHO_ORDERS:
        raise RhojaxError(f"--rho-order {rho_order!r}: choose ascending or descending")
    out = output_dir(out)
    settings = Settings(calib_tokens=calib_tokens, eval_tokens=eval_tokens, seq_len=seq_len, rho_eps=rho_eps,
                        samples=samples, tasks=tasks, task_limit=task_limit, seed=seed)
    study = Study(load_model(model, dtype=dtype), settings)
    removed = study.removal(lam, remove, rho_order=rho_order, version=rho_version, iterative=iterative)
    console.print(f"removing layers {removed}")
    config, params = remove_layers(study.model.config, study.model.params, removed)
    result = {
        **study.metadata(criterion=criterion, lam=lam, rho_order=rho_order, rho_version=rho_version,
                         iterative=iterative),
        "removed_layers": removed,
        "remaining_layers": config.num_layers,
        "scores": {name: study.signal(name) for name in ("rho_aggregate", "rho_tokenwise", "bi", "bi_without_bos")},
        "dense": study.evaluate(study.model.config, study.model.params),
        "pruned": study.evaluate(config, params),
    }
    write_json(out / "prune_depth.json", result)
    console.print(f"perplexity {result['dense']['perplexity']:.3f} -> {result['pruned']['perplexity']:.3f}")
    if save_model:
        save_hf(config, params, out / "model", tokenizer=study.model.tokenizer)
        console.print(f"saved the pruned model to {out / 'model'}")
    console.print(f"wrote {out / 'prune_depth.json'}")


@guarded
def allocate(
    model: str = MODEL,
    sparsity: float = typer.Option(..., "--sparsity", help="Target mean sparsity, e.g. 0.5 or 0.7."),
    method: str = typer.Option("wanda", "--method", help="Within-layer method: wanda or sparsegpt."),
    schedule: str = typer.Option("owl", "--schedule", help=", ".join(SCHEDULES)),
    out: Path = typer.Option(..., "--out", help="Result folder (allocation.json, model/ with --save-model)."),
    save_model: bool = typer.Option(False, "--save-model", help="Also save the pruned model (HF safetensors)."),
    rho_eps: float = typer.Option(0.1, "--eps", help="Relative perturbation size for rho (schedule rho)."),
    absorption_eps: float = typer.Option(0.5, "--absorption-eps", help="Perturbation size for absorption u_l."),
    dtype: str = DTYPE,
    calib_tokens: int = SETTINGS_OPTIONS["calib_tokens"],
    eval_tokens: int = SETTINGS_OPTIONS["eval_tokens"],
    seq_len: int = SETTINGS_OPTIONS["seq_len"],
    samples: int = SETTINGS_OPTIONS["samples"],
    tasks: str = SETTINGS_OPTIONS["tasks"],
    task_limit: int = SETTINGS_OPTIONS["task_limit"],
    seed: int = SETTINGS_OPTIONS["seed"],
) -> None:
    """Prune MODEL to a mean --sparsity with a layer-wise --schedule and Wanda or SparseGPT inside each layer."""
    if method not in WITHIN_LAYER_METHODS:
        raise RhojaxError(f"--method {method!r}: choose wanda or sparsegpt")
    out = output_dir(out)
    settings = Settings(calib_tokens=calib_tokens, eval_tokens=eval_tokens, seq_len=seq_len, rho_eps=rho_eps,
                        absorption_eps=absorption_eps, samples=samples, tasks=tasks, task_limit=task_limit,
                        seed=seed)
    study = Study(load_model(model, dtype=dtype), settings)
    record = allocation_record(study, sparsity, method, schedule)
    write_json(out / "allocation.json", {**study.metadata(), **record})
    console.print(f"{schedule} / {method} at {sparsity:.0%}: perplexity {record['perplexity']:.3f}")
    if save_model:
        params = pruned_params(study, np.asarray(record["ratios"]), method)
        save_hf(study.model.config, params, out / "model", tokenizer=study.model.tokenizer)
        console.print(f"saved the pruned model to {out / 'model'}")
    console.print(f"wrote {out / 'allocation.json'}")


def pruned_params(study: Study, ratios: np.ndarray, method: str) -> dict:
    config = study.model.config
    with progress_bar(f"{method} (sequential, {config.num_layers} layers)", config.num_layers) as update:
        return prune_with_allocation(config, study.model.params, ratios, method, study.calibration,
                                     batch_size=study.settings.batch_size, on_layer=update)


def allocation_record(study: Study, sparsity: float, method: str, schedule: str, *, tasks: bool = True) -> dict:
    """Schedule, prune and evaluate one (sparsity, method, schedule) cell."""
    ratios = study.schedule(schedule, sparsity)
    params = pruned_params(study, ratios, method)
    realised = layer_sparsity(study.model.config, params)
    return {"sparsity": sparsity, "method": method, "schedule": schedule, "ratios": ratios,
            "realised": realised, "realised_mean": float(realised.mean()),
            **study.evaluate(study.model.config, params, tasks=tasks)}


@dataclasses.dataclass(frozen=True)
class DepthCriterion:
    """One row family of the depth table."""

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


def latest_depth_rows(path: Path) -> list[dict]:
    """``depth.jsonl`` with one row per ``(criterion, k)``: the last one written (a re-run may supersede)."""
    return list({(r["criterion"], r["k"]): r for r in read_jsonl(path)}.values())


def _add_missing_tasks(study: Study, path: Path, criteria: set[str], task_ks: tuple[int, ...]) -> None:
    """Score the zero-shot tasks for rows of ``criteria`` at ``k`` in ``task_ks`` that were run without them
    (the file is rewritten atomically after each row, so an interruption loses at most one evaluation)."""
    if not study.settings.tasks:
        return
    rows = latest_depth_rows(path)
    for i, r in enumerate(rows):
        if r["criterion"] in criteria and r["k"] in task_ks and "mean_acc" not in r:
            config, params = remove_layers(study.model.config, study.model.params, r["removed_layers"])
            rows[i] = {**r, **study.evaluate(config, params)}
            write_jsonl(path, rows)
            console.print(f"depth {r['criterion']} k={r['k']}: tasks added")


def run_depth_study(
    model: Model,
    out: Path,
    *,
    settings: Settings = Settings(),
    ks: tuple[int, ...] = (2, 4, 6, 8),
    criteria: tuple[DepthCriterion, ...] = STUDY_CRITERIA,
    sparsities: tuple[float, ...] = (0.7, 0.5),
    methods: tuple[str, ...] = ("wanda", "sparsegpt"),
    schedules: tuple[str, ...] = SCHEDULES,
    task_ks: tuple[int, ...] = (2, 4, 6, 8),
    allocation_tasks: bool = False,
) -> Path:
    """The depth-pruning and allocation tables of one model, into ``out`` (resumable).

    Zero-shot tasks are scored for the dense model, for ``k`` in ``task_ks`` (rows from an earlier run
    without them get them added) and, with ``allocation_tasks``, for every allocation (perplexity
    everywhere). Writes ``signals.json`` (dense per-layer scores), ``depth.jsonl`` (one line per
    criterion and k) and ``allocation.jsonl`` (one line per sparsity, method and schedule); lines
    already present are skipped.
    """
    out = output_dir(out)
    saved = out / "signals.json"
    previous = json.loads(saved.read_text()) if saved.exists() else None
    if previous is not None:
        changed = [k for k, v in dataclasses.asdict(settings).items() if previous.get(k) != v]
        if changed:
            raise RhojaxError(f"{saved} was measured with other settings ({', '.join(changed)}): use a new folder")
    study = Study(model, settings, previous)
    write_json(saved, {**study.metadata(), **study.signals()})
    depth_path, alloc_path = out / "depth.jsonl", out / "allocation.jsonl"
    if criteria and not read_jsonl(depth_path):
        append_jsonl(depth_path, {"criterion": "dense", "k": 0, "removed_layers": [],
                                  **study.evaluate(model.config, model.params)})
    done = {(r["criterion"], r["k"]) for r in read_jsonl(depth_path)}
    for c in criteria:
        if all((c.name, k) in done for k in ks):
            continue
        order = study.removal(c.lam, max(ks), rho_order=c.rho_order, version=c.version, iterative=c.iterative)
        for k in ks:
            if (c.name, k) in done:
                continue
            config, params = remove_layers(model.config, model.params, order[:k])
            append_jsonl(depth_path, {"criterion": c.name, "k": k, "removed_layers": order[:k],
                                      **dataclasses.asdict(c),
                                      **study.evaluate(config, params, tasks=k in task_ks)})
            console.print(f"depth {c.name} k={k}: removed {order[:k]}")
    _add_missing_tasks(study, depth_path, {c.name for c in criteria}, task_ks)
    done = {(r["sparsity"], r["method"], r["schedule"]) for r in read_jsonl(alloc_path)}
    for method in methods:
        for sparsity in sparsities:
            for schedule in schedules:
                if (sparsity, method, schedule) not in done:
                    record = allocation_record(study, sparsity, method, schedule, tasks=allocation_tasks)
                    append_jsonl(alloc_path, record)
                    console.print(f"allocation {schedule} / {method} at {sparsity:.0%} done")
    draw_study(out, model.spec)
    return out


def draw_study(out: Path, name: str) -> list[Path]:
    """The study's PNG figures from its result files."""
    signals = json.loads((out / "signals.json").read_text())
    paths = [figures.layer_scores(out / "layer_scores.png", signals, name)]
    depth_rows = latest_depth_rows(out / "depth.jsonl")
    if len(depth_rows) > 1:
        paths.append(figures.perplexity_vs_removed(out / "depth_perplexity.png", depth_rows, name))
    alloc_rows = read_jsonl(out / "allocation.jsonl")
    for sparsity, method in dict.fromkeys((r["sparsity"], r["method"]) for r in alloc_rows):
        paths.append(figures.schedules(out / f"schedules_{method}_{round(sparsity * 100)}.png", alloc_rows, name,
                                       sparsity, method))
    return paths
