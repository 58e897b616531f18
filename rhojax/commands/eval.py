"""``rhojax eval``: zero-shot accuracy of a model on HellaSwag, ARC, PIQA, Winogrande and LAMBADA."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from rhojax.commands.common import DTYPE, MODEL, console, guarded, output_dir, progress_bar, run_metadata
from rhojax.eval.task_data import TASKS, task_data_path
from rhojax.eval.tasks import evaluate_task, parse_task_names
from rhojax.io.resolve import Model, load_model
from rhojax.report.jsonio import write_json


def _settings(model: Model, limit: int | None, prepend_bos: bool) -> dict:
    return {"model": model.spec, "dtype": model.dtype, "limit": limit, "prepend_bos": prepend_bos}


def run_eval(
    model: Model,
    out: Path,
    tasks: str | list[str] = "all",
    *,
    limit: int | None = None,
    batch_size: int = 16,
    prepend_bos: bool = False,
) -> dict[str, dict]:
    """Evaluate ``model`` on ``tasks`` into ``out``: ``<task>.json`` (with per-item predictions) and ``eval.json``.

    A task whose file already holds a result with the same settings is not re-run (resume).
    Returns the per-task summaries (accuracy, stderr, item count; no predictions).
    """
    names = parse_task_names(tasks)
    for name in names:
        task_data_path(name)
    out = output_dir(out)
    settings = _settings(model, limit, prepend_bos)
    summaries = {}
    for name in names:
        path = out / f"{name}.json"
        previous = json.loads(path.read_text()) if path.exists() else None
        if previous is not None and previous.get("settings") == settings:
            summaries[name] = {k: v for k, v in previous["result"].items() if k != "predictions"}
            console.print(f"{name}: reusing {path}")
            continue
        with progress_bar(f"{name} (% of requests)", 100) as update:
            result = evaluate_task(
                model.config, model.params, model.tokenizer, name, limit=limit, batch_size=batch_size,
                prepend_bos=prepend_bos, on_batch=lambda done, total: update(100 * done // total),
            )
        write_json(path, {**run_metadata(model, task=name), "settings": settings, "result": result.to_dict()})
        summaries[name] = result.summary()
        _write_summary(out, model, settings, summaries)
    _write_summary(out, model, settings, summaries)
    return summaries


def _write_summary(out: Path, model: Model, settings: dict, summaries: dict) -> None:
    metadata = run_metadata(model, limit=settings["limit"], prepend_bos=settings["prepend_bos"])
    write_json(out / "eval.json", {**metadata, "tasks": summaries})


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
def eval_tasks(
    model: str = MODEL,
    tasks: str = typer.Option("all", "--tasks", help=f"Comma-separated task names or 'all': {', '.join(TASKS)}."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first N items of each task."),
    out: Path = typer.Option(..., "--out", help="Result folder (eval.json and one <task>.json per task)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Sequences per jitted call."),
    bos: bool = typer.Option(False, "--bos/--no-bos", help="Prepend BOS to every request (lm-eval adds none)."),
    dtype: str = DTYPE,
) -> None:
    """Zero-shot accuracy of MODEL (lm-evaluation-harness prompts and metrics), resumable per task."""
    names = parse_task_names(tasks)
    loaded = load_model(model, dtype=dtype)
    summaries = run_eval(loaded, out, names, limit=limit, batch_size=batch_size, prepend_bos=bos)
    console.print(_table(summaries))
    console.print(f"wrote {Path(out) / 'eval.json'}")
