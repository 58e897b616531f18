"""``rhojax bounds``: check the formal bounds on the real model's matrices and calibration activations,
or (``--sites``) evaluate the site bounds against the measured block-output change."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import typer
from rich.table import Table

from rhojax.bounds.checker import check_bounds, site_inputs
from rhojax.bounds.levels import plan
from rhojax.bounds.site_study import evaluate_sites, needs_stats, site_plan, summarize_sites
from rhojax.bounds.summary import level_record, summarize
from rhojax.commands.common import DTYPE, MODEL, TEXT, console, guarded, output_dir, progress_bar, run_metadata
from rhojax.compress import NEEDS_HESSIAN, calibration_stats
from rhojax.data.windows import corpus_windows
from rhojax.errors import RhojaxError
from rhojax.io.resolve import Model, load_model
from rhojax.report.jsonio import append_jsonl, read_jsonl, write_json


def run_bounds(
    model: Model,
    out: Path,
    *,
    text: str = "wiki",
    plan_name: str = "default",
    tokens: int = 512,
    seq_len: int = 128,
    check_tokens: int = 32,
    chain_depth: int = 2,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    from_end: bool = False,
) -> dict:
    """Run the bound checker on ``model`` into ``out`` (``checks.jsonl``, resumable, and ``summary.json``).

    Calibration statistics (Wanda norms, SparseGPT Hessians) come from ``tokens`` calibration tokens
    in ``seq_len`` windows; the bounds are evaluated on ``check_tokens`` of those tokens' activations.
    ``shard=(k, n)`` runs levels ``k, k+n, k+2n, ...`` into ``checks-{k}of{n}.jsonl`` so that ``n``
    processes can share the sweep; ``from_end`` takes the shard's levels last first (into
    ``checks-{k}of{n}-end.jsonl``), so a second group of processes can work towards the first.
    The summary reads every ``checks*.jsonl`` of ``out`` (a level computed twice counts once).
    """
    out = output_dir(out)
    levels = plan(plan_name)
    index, count = shard
    name = "checks" if count == 1 else f"checks-{index}of{count}"
    log = out / (f"{name}-end.jsonl" if from_end else f"{name}.jsonl")
    done = {rec["level"] for path in out.glob("checks*.jsonl") for rec in read_jsonl(path)}
    todo = [level for i, level in enumerate(levels) if i % count == index and level.label not in done]
    todo = todo[::-1] if from_end else todo
    windows = corpus_windows(model.tokenizer, text, "calibration", tokens, seq_len)
    if todo:
        hessians = any(level.method in NEEDS_HESSIAN for level in todo)
        stats = calibration_stats(model.config, model.params, windows, hessians=hessians)
        inputs = site_inputs(model.config, model.params, windows, check_tokens)
        results = check_bounds(model.config, model.params, inputs, stats, todo, key=jax.random.PRNGKey(seed),
                               chain_depth=chain_depth)
        with progress_bar(f"bounds ({len(levels)} levels, {len(done)} done)", len(todo)) as update:
            for i, result in enumerate(results):
                append_jsonl(log, level_record(result))
                update(i + 1)
    records = list({rec["level"]: rec for path in sorted(out.glob("checks*.jsonl")) for rec in read_jsonl(path)
                    if rec["level"] in {level.label for level in levels}}.values())
    summary = {
        **run_metadata(model, text=text, plan=plan_name, calibration_tokens=int(windows.size), seq_len=seq_len,
                       check_tokens=check_tokens, chain_depth=chain_depth, seed=seed),
        **summarize(records),
    }
    write_json(out / "summary.json", summary)
    return summary


def _provenance(started: float) -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip() or None
    return {"command": " ".join(["rhojax", *sys.argv[1:]]), "commit": commit,
            "wall_seconds": time.perf_counter() - started,
            "machine": {"node": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average": os.getloadavg()}}


def run_site_bounds(model: Model, out: Path, *, text: str = "wiki", plan_name: str = "default", tokens: int = 128,
                    seq_len: int = 64, seed: int = 0, sweep: Path | None = None) -> dict:
    """Site bounds of every (layer, kind) x level of ``plan_name`` on ``tokens`` calibration tokens, into
    ``out/site_summary.json`` (summary, provenance and one row per configuration)."""
    started = time.perf_counter()
    out = output_dir(out)
    levels = site_plan(plan_name)
    sweep_records = [] if sweep is None else read_jsonl(sweep)
    windows = corpus_windows(model.tokenizer, text, "calibration", tokens, seq_len)
    norms, hessians = needs_stats(levels)
    stats = calibration_stats(model.config, model.params, windows, hessians=hessians) if norms else None
    rows = evaluate_sites(model.config, model.params, windows, levels, stats=stats, key=jax.random.PRNGKey(seed))
    summary = {
        **run_metadata(model, text=text, site_plan=plan_name, levels=[level.label for level in levels],
                       calibration_tokens=int(windows.size), seq_len=seq_len, seed=seed,
                       sweep=None if sweep is None else str(sweep)),
        **summarize_sites(rows, sweep_records),
    }
    summary.update(_provenance(started), rows=rows)
    write_json(out / "site_summary.json", summary)
    return summary


def site_table(summary: dict) -> Table:
    table = Table(title=f"site bounds on {summary['model']}: {summary['configurations']:,} configurations, "
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


def summary_table(summary: dict) -> Table:
    table = Table(title=f"bounds on {summary['model']}: {summary['configurations']:,} configurations, "
                        f"{summary['evaluations']:,} evaluations, {summary['violations']} violations")
    for column in ("theorem", "evaluations", "violations", "min", "median", "p95", "max"):
        table.add_column(column, justify="left" if column == "theorem" else "right")
    for name, entry in summary["theorems"].items():
        t = entry["tightness"]
        table.add_row(name, f"{entry['evaluations']:,}", str(entry["violations"]),
                      *(f"{t[q]:.3g}" if q in t else "-" for q in ("min", "median", "p95", "max")))
    return table


@guarded
def bounds(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Result folder (checks.jsonl, summary.json); reruns resume."),
    text: str = TEXT,
    plan_name: str = typer.Option(
        "default", "--plan", help="default (CPU-sized, 73 levels), full (GPU, 72 balanced levels) or quick (2)."
    ),
    tokens: int = typer.Option(512, "--tokens", help="Calibration tokens for Wanda norms / SparseGPT Hessians."),
    seq_len: int = typer.Option(128, "--seq-len"),
    check_tokens: int = typer.Option(32, "--check-tokens", help="Activation rows the bounds are evaluated on."),
    chain_depth: int = typer.Option(2, "--chain-depth", help="Layers in the product-propagation chain."),
    seed: int = typer.Option(0, "--seed", help="PRNG seed of the rotated-RTN rotations."),
    shard: str = typer.Option("0/1", "--shard", help="K/N: run every N-th level from K (N processes share a sweep)."),
    from_end: bool = typer.Option(False, "--from-end", help="Take the shard's levels last first."),
    sites: bool = typer.Option(False, "--sites", help="Evaluate the site bounds (block-output change when one "
                               "matrix is compressed) instead of the per-matrix checker."),
    site_plan_name: str = typer.Option("default", "--site-plan", help="With --sites: default (RTN 3-bit, "
                                       "magnitude 50%, Wanda 50%) or quick (RTN 3-bit)."),
    sweep: Path | None = typer.Option(None, "--sweep", help="With --sites: a sweep.jsonl; Spearman of site bound "
                                      "vs perplexity ratio for the levels it shares."),
    dtype: str = DTYPE,
) -> None:
    """Evaluate every formal bound on MODEL's matrices for every site x method x level (tightness = bound / actual)."""
    if sites:
        site_plan(site_plan_name)
        if sweep is not None and not Path(sweep).is_file():
            raise RhojaxError(f"--sweep {sweep}: no such file; pass a sweep folder's sweep.jsonl")
        summary = run_site_bounds(load_model(model, dtype=dtype), out, text=text, plan_name=site_plan_name,
                                  tokens=tokens, seq_len=seq_len, seed=seed, sweep=sweep)
        console.print(site_table(summary))
        for label, entry in summary["spearman"].items():
            console.print(f"{label}: Spearman(site bound, ppl ratio) = {entry['bound_vs_ppl_ratio']:.3f} over "
                          f"{entry['sites']} sites (measured block change: "
                          f"{entry['measured_change_vs_ppl_ratio']:.3f})")
        console.print(f"wrote {Path(out) / 'site_summary.json'}")
        if summary["violations"]:
            raise typer.Exit(code=1)
        return
    plan(plan_name)  # a wrong --plan or --shard fails before the model loads
    parsed_shard = parse_shard(shard)
    loaded = load_model(model, dtype=dtype)
    summary = run_bounds(loaded, out, text=text, plan_name=plan_name, tokens=tokens, seq_len=seq_len,
                         check_tokens=check_tokens, chain_depth=chain_depth, seed=seed, shard=parsed_shard,
                         from_end=from_end)
    console.print(summary_table(summary))
    console.print(f"wrote {Path(out) / 'summary.json'}")
    if summary["violations"]:
        raise typer.Exit(code=1)
