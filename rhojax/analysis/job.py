"""``run_analysis``: every study of the main job in its own resumable sub-folder, then the report.

Each step is a :class:`Step`: it runs a study into a nested :class:`~rhojax.runs.RunFolder` whose
settings are that study's, keeps the study's summary as a finished part (so a rerun after a kill
skips finished studies and resumes the one in flight from its own parts), draws the study's figures
and contributes a compact section to ``report.json``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jax.sharding import Mesh

from rhojax.analysis.answer import build_answer
from rhojax.analysis.budgets import AnalysisSettings
from rhojax.analysis.sections import SECTIONS
from rhojax.bounds.study import run_bounds_study
from rhojax.depth.study import run_depth_study
from rhojax.errors import RhojaxError
from rhojax.eval.perplexity_study import run_perplexity_study
from rhojax.eval.study import run_eval_study
from rhojax.io.resolve import describe
from rhojax.plan.study import run_plan_study
from rhojax.progress import SILENT, Progress
from rhojax.propagation.study import run_profile_study
from rhojax.provenance import provenance
from rhojax.report.depth_figures import draw_depth_figures
from rhojax.report.jsonio import read_jsonl
from rhojax.report.propagation_figures import draw_profile_figures
from rhojax.report.sensitivity_figures import draw_sweep_figures
from rhojax.report.structure_figures import draw_structure_figures
from rhojax.runs import RunFolder
from rhojax.sensitivity.study import RESULTS, run_sweep_study
from rhojax.settings import run_identity
from rhojax.structure.study import run_structure_study

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Step:
    """One study of the main job: ``run(model, run_folder, settings, progress, mesh) -> summary``.

    ``mesh`` (None: one device) is passed to the studies that split their work over devices; the others
    run on the model as placed."""

    name: str
    title: str
    run: Callable
    draw: Callable[[Path, dict], list[Path]] | None = None


STEPS: tuple[Step, ...] = (
    Step("perplexity", "Perplexity", lambda m, run, s, p, mesh: run_perplexity_study(m, s, progress=p, mesh=mesh)),
    Step("profile", "Contraction profile", lambda m, run, s, p, mesh: run_profile_study(m, run, s, progress=p,
                                                                                        mesh=mesh),
         draw_profile_figures),
    Step("sensitivity", "Sensitivity map", lambda m, run, s, p, mesh: run_sweep_study(m, run, s, progress=p,
                                                                                      mesh=mesh),
         draw_sweep_figures),
    Step("eval", "Zero-shot accuracy", lambda m, run, s, p, mesh: run_eval_study(m, run, s, progress=p)),
    # the site bounds are ranked against the sensitivity map measured by the step before
    Step("bounds", "Formal bounds", lambda m, run, s, p, mesh: run_bounds_study(
        m, run, s, progress=p, sweep=read_jsonl(run.path.parent / "sensitivity" / RESULTS))),
    Step("depth", "Depth pruning and allocation", lambda m, run, s, p, mesh: run_depth_study(m, run, s, progress=p),
         draw_depth_figures),
    Step("structure", "Structure", lambda m, run, s, p, mesh: run_structure_study(m, run, s, progress=p),
         draw_structure_figures),
    Step("plan", "Compression plan", lambda m, run, s, p, mesh: run_plan_study(m, run, s, progress=p)),
)
#: Every study of the main job, in order.
STUDIES: tuple[str, ...] = tuple(step.name for step in STEPS)
#: Studies that read another study's results: each needs the ones listed (run before it).
REQUIRES: dict[str, tuple[str, ...]] = {"bounds": ("sensitivity",)}


def check_studies(studies) -> tuple[str, ...]:
    """``studies`` in job order, checked: known names, and every study a chosen one reads is chosen too."""
    chosen = tuple(studies)
    for name in chosen:
        if name not in STUDIES:
            raise RhojaxError(f"study {name!r}: choose from {', '.join(STUDIES)}")
        missing = [r for r in REQUIRES.get(name, ()) if r not in chosen]
        if missing:
            raise RhojaxError(f"study {name!r} reads the results of {', '.join(missing)}: add it to studies")
    return tuple(s for s in STUDIES if s in chosen)


def run_analysis(model, out: str | Path, settings: AnalysisSettings, *, budget: str = "custom",
                 progress: Progress = SILENT, on_step: Callable[[int, int, str], None] | None = None,
                 studies: Sequence[str] = STUDIES, mesh: Mesh | None = None, load_seconds: float = 0.0) -> dict:
    """Run the ``studies`` (default: every study) of ``settings`` on ``model`` into ``out`` and write
    ``report.json`` / ``report.html``.

    Returns the report (plain JSON data). A rerun with the same settings resumes: finished studies are
    read back, the interrupted one continues from its parts. ``on_step(i, n, name)`` announces steps.
    ``mesh`` (:func:`rhojax.sharding.make_mesh`) splits the perplexity, profile and sweep over devices;
    place the params first with :func:`rhojax.sharding.shard_model`. ``timings`` holds each step's
    seconds, ``load`` (the caller's ``load_seconds``: reading and dequantising the model) and
    ``total_seconds``: load plus everything this call did up to the report.
    """
    from rhojax.report.html import write_html

    job_started, code = time.perf_counter(), provenance()  # the code the job started with
    root = RunFolder.open(out, {**run_identity(model, settings), "budget": budget})
    chosen = check_studies(studies)
    steps = [step for step in STEPS if step.name in chosen]
    summaries, timings, figures = {}, {"load": round(load_seconds, 1)}, {}
    for i, step in enumerate(steps, 1):
        if on_step is not None:
            on_step(i, len(steps), step.name)
        study_settings = getattr(settings, step.name)
        sub = root.sub(step.name, run_identity(model, study_settings))
        started = time.perf_counter()
        summaries[step.name] = sub.part("summary", lambda step=step, sub=sub, s=study_settings:
                                        step.run(model, sub, s, progress, mesh))
        timings[step.name] = round(time.perf_counter() - started, 1)
        if step.draw is not None:
            drawn = step.draw(sub.path, {"model": model.spec, **summaries[step.name]})
            figures[step.name] = [str(p.relative_to(root.path)) for p in drawn]
    report = {
        "schema_version": SCHEMA_VERSION,
        "model": describe(model),
        "budget": budget,
        "settings": dataclasses.asdict(settings),
        "provenance": code,
        "answer": build_answer(summaries, settings.answer),
        **{name: compact(summaries[study]) for name, (study, compact) in SECTIONS.items() if study in summaries},
        "figures": figures,
        "timings": {"seconds": timings,
                    "total_seconds": round(load_seconds + time.perf_counter() - job_started, 1)},
    }
    root.write("report.json", report)
    write_html(root.file("report.html"), root.path, report)
    return report
