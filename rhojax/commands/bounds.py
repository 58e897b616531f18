"""``rhojax bounds``: the bound checker and the site bounds on a real model (:mod:`rhojax.bounds.study`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rhojax.bounds.study import BoundsSettings, run_bounds_study
from rhojax.commands.common import DTYPE, MODEL, console, guarded, open_run, progress, save_summary
from rhojax.commands.options import with_settings
from rhojax.errors import RhojaxError
from rhojax.io.resolve import load_model
from rhojax.report.jsonio import read_jsonl


def site_table(summary: dict, model: str) -> Table:
    table = Table(title=f"site bounds on {model}: {summary['configurations']:,} configurations, "
                        f"{summary['violations']} violations (tightness = bound / measured block change)")
    for column in ("kind", "min", "median", "p95", "max", "sublayer median"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, entry in summary["by_kind"].items():
        t, sub = entry["tightness"], entry["sublayer_tightness"]
        table.add_row(kind, *(f"{t[q]:.3g}" if q in t else "-" for q in ("min", "median", "p95", "max")),
                      f"{sub['median']:.3g}" if "median" in sub else "-")
    return table


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise RhojaxError(f"--shard {text!r}: write K/N with 0 <= K < N, e.g. 0/2 and 1/2 for two processes")
    return index, count


def summary_table(summary: dict, model: str) -> Table:
    table = Table(title=f"bounds on {model}: {summary['configurations']:,} configurations, "
                        f"{summary['evaluations']:,} evaluations, {summary['violations']} violations")
    for column in ("theorem", "evaluations", "violations", "min", "median", "p95", "max"):
        table.add_column(column, justify="left" if column == "theorem" else "right")
    for name, entry in summary["theorems"].items():
        t = entry["tightness"]
        table.add_row(name, f"{entry['evaluations']:,}", str(entry["violations"]),
                      *(f"{t[q]:.3g}" if q in t else "-" for q in ("min", "median", "p95", "max")))
    return table


@guarded
@with_settings(BoundsSettings)
def bounds(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (summary.json, parts/ per level); reruns resume."),
    shard: str = typer.Option("0/1", "--shard", help="K/N: this process takes every N-th checker level from K "
                              "(N processes can share one folder)."),
    sweep: Path | None = typer.Option(None, "--sweep", help="A sweep.jsonl: Spearman of site bound vs perplexity "
                                      "ratio for the levels it shares with the site plan."),
    dtype: str = DTYPE,
    settings: BoundsSettings = BoundsSettings(),
) -> None:
    """Check the formal bounds on MODEL's matrices (tightness = bound / actual) and the site bounds on its blocks."""
    parsed_shard = parse_shard(shard)  # a wrong --shard or --sweep fails before the model loads
    if sweep is not None and not Path(sweep).is_file():
        raise RhojaxError(f"--sweep {sweep}: no such file; pass a sweep folder's sweep.jsonl")
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    summary = run_bounds_study(loaded, run, settings, progress=progress(), shard=parsed_shard,
                               sweep=read_jsonl(sweep) if sweep is not None else ())
    summary = save_summary(run, "summary.json", loaded, summary)
    violations = 0
    if "checker" in summary:
        console.print(summary_table(summary["checker"], loaded.spec))
        violations += summary["checker"]["violations"]
    if "sites" in summary:
        console.print(site_table(summary["sites"], loaded.spec))
        for label, entry in summary["sites"]["spearman"].items():
            console.print(f"{label}: Spearman(site bound, ppl ratio) = {entry['bound_vs_ppl_ratio']:.3f} over "
                          f"{entry['sites']} sites (measured block change: "
                          f"{entry['measured_change_vs_ppl_ratio']:.3f})")
        violations += summary["sites"]["violations"]
    console.print(f"wrote {run.file('summary.json')}")
    if violations:
        raise typer.Exit(code=1)
