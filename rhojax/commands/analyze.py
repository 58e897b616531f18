"""``rhojax analyze``: the main job on one model (:mod:`rhojax.analysis`), resumable, with its report."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from rhojax.analysis import BUDGETS, budget_settings, run_analysis
from rhojax.commands.common import DEVICES, DTYPE, MODEL, MODEL_PARALLEL, console, guarded, placed, progress
from rhojax.io.resolve import load_model


@guarded
def analyze(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder: report.json, report.html, one sub-folder per study."),
    budget: str = typer.Option("quick", "--budget", help=f"Token budgets, items and levels: {', '.join(BUDGETS)}."),
    text: str | None = typer.Option(None, "--text", help="Read this corpus or file instead of wiki in every study."),
    dtype: str = DTYPE,
    devices: int = DEVICES,
    model_parallel: int = MODEL_PARALLEL,
) -> None:
    """Run every study on MODEL and write report.json and report.html to --out; rerun the same command to resume."""
    settings = budget_settings(budget, text)
    started = time.perf_counter()
    loaded, mesh = placed(load_model(model, dtype=dtype), devices, model_parallel)
    load_seconds = time.perf_counter() - started
    console.print(f"{model}: {loaded.config.num_layers} layers, budget {budget} -> {out}")
    report = run_analysis(loaded, out, settings, budget=budget, progress=progress(),
                          on_step=lambda i, n, name: console.rule(f"[{i}/{n}] {name}"),
                          load_seconds=load_seconds, mesh=mesh)
    console.print(f"done in {report['timings']['total_seconds']:.0f} s (this run, load included): "
                  f"{Path(out) / 'report.html'} and report.json")
