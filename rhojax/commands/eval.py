"""``rhojax eval``: zero-shot accuracy of a model on HellaSwag, ARC, PIQA, Winogrande and LAMBADA
(:mod:`rhojax.eval.study`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rhojax.commands.common import DTYPE, MODEL, console, guarded, open_run, progress, save_summary
from rhojax.commands.options import with_settings
from rhojax.eval.study import EvalSettings, run_eval_study
from rhojax.io.resolve import load_model


def _table(summaries: dict[str, dict]) -> Table:
    table = Table(title="zero-shot accuracy")
    for column in ("task", "items", "acc", "acc_norm", "other"):
        table.add_column(column)
    for name, s in summaries.items():
        norm = f"{s['acc_norm']:.4f} ± {s['acc_norm_stderr']:.4f}" if s["acc_norm"] is not None else "-"
        other = f"perplexity {s['perplexity']:.3f}" if s["perplexity"] is not None else ""
        table.add_row(name, str(s["items"]), f"{s['acc']:.4f} ± {s['acc_stderr']:.4f}", norm, other)
    return table


@guarded
@with_settings(EvalSettings)
def eval_tasks(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (eval.json, parts/task_<name>.json with predictions)."),
    dtype: str = DTYPE,
    settings: EvalSettings = EvalSettings(),
) -> None:
    """Zero-shot accuracy of MODEL (lm-evaluation-harness prompts and metrics), resumable per task."""
    settings.task_names()  # fail fast, before loading the model
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "eval.json", loaded, run_eval_study(loaded, run, settings, progress=progress()))
    console.print(_table(summary["tasks"]))
    console.print(f"wrote {run.file('eval.json')}")
