"""``rhojax bounds``: check the Lean bounds on the real model's matrices and calibration activations."""

from __future__ import annotations

from pathlib import Path

import jax
import typer
from rich.table import Table

from rhojax.bounds.checker import check_bounds, site_inputs
from rhojax.bounds.levels import plan
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
    dtype: str = DTYPE,
) -> None:
    """Evaluate every Lean bound on MODEL's matrices for every site x method x level (tightness = bound / actual)."""
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
