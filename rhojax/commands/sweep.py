"""``rhojax sweep``: the per-matrix sensitivity map (:mod:`rhojax.sensitivity.study`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.common import (
    DEVICES,
    DTYPE,
    MODEL,
    MODEL_PARALLEL,
    console,
    guarded,
    open_run,
    placed,
    progress,
    save_summary,
)
from rhojax.commands.options import with_settings
from rhojax.data.corpora import is_builtin
from rhojax.io.stream import open_model
from rhojax.report.jsonio import read_jsonl
from rhojax.report.sensitivity_figures import draw_sweep_figures
from rhojax.sensitivity.study import RESULTS, SweepSettings, run_sweep_study
from rhojax.sensitivity.summary import kind_rank_transfer, select


@guarded
@with_settings(SweepSettings)
def sweep(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (sweep.jsonl, summary.json, PNG figures)."),
    compare: Path | None = typer.Option(None, "--compare", help="Another sweep folder: Kendall tau of kinds."),
    dtype: str = DTYPE,
    devices: int = DEVICES,
    model_parallel: int = MODEL_PARALLEL,
    settings: SweepSettings = SweepSettings(),
) -> None:
    """Per-matrix sensitivity map of MODEL: compress one (layer, kind) at a time, everything else dense.

    Records perplexity ratio (evaluation split) and final-state drift per configuration in sweep.jsonl
    as it goes; rerunning with the same arguments resumes.
    """
    settings.method_levels()  # fail fast, before loading the model
    loaded, mesh = placed(open_model(model, dtype=dtype, stream=settings.stream,
                                     memory_budget=settings.memory_budget), devices, model_parallel)
    if not is_builtin(settings.text) and settings.text == settings.calib_text:
        console.print(f"note: --text and --calib-text are the same file {settings.text}: calibration and "
                      "evaluation overlap")
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "summary.json", loaded,
                           run_sweep_study(loaded, run, settings, progress=progress(), mesh=mesh), draw_sweep_figures)
    console.print(f"dense perplexity {summary['dense_ppl']:.4f} on {summary['scored_tokens']} scored tokens")
    for label, m in summary["maps"].items():
        order = " > ".join(h["kind"] for h in m["hierarchy"])
        cfi = "" if m["cfi"] is None else f", CFI {m['cfi']:.4f}"
        if m["uniform_ratio"] is not None:
            cfi += f" (all sites at once: ppl x{m['uniform_ratio']:.3g})"
        console.print(f"{label}: hierarchy {order}; spread {m['spread']:.3g}x{cfi}")
    if compare is not None:
        other, mine = read_jsonl(Path(compare) / RESULTS), read_jsonl(run.file(RESULTS))
        for method, level in sorted({(r["method"], float(r["level"])) for r in mine}):
            tau = kind_rank_transfer(select(mine, method, level), select(other, method, level))
            console.print(f"rank transfer of kinds vs {compare} ({method}@{level:g}): Kendall tau {tau:.3f}")
    console.print(f"wrote {run.file(RESULTS)}, {run.file('summary.json')} and figures")
