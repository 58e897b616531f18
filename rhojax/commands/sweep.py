"""``rhojax sweep``: the per-matrix sensitivity map, resumable, with its summaries and figures."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import typer

from rhojax.commands.basics import DTYPE, MODEL, TEXT
from rhojax.commands.common import console, guarded, output_dir, progress_bar, run_metadata
from rhojax.compress import NEEDS_HESSIAN, NEEDS_INPUT_NORM, calibration_stats
from rhojax.data.windows import corpus_windows
from rhojax.io.resolve import Model, load_model
from rhojax.report.jsonio import read_jsonl, write_json
from rhojax.report.sensitivity_figures import hierarchy_chart, sensitivity_heatmap
from rhojax.sensitivity.grid import parse_levels, sweep_grid
from rhojax.sensitivity.summary import (
    compression_fragility_index,
    hierarchy,
    kind_rank_transfer,
    ratio_map,
    select,
    spread,
)
from rhojax.sensitivity.sweep import run_sweep
from rhojax.sensitivity.uniform import uniform_ratio

RESULTS = "sweep.jsonl"


def summarize(
    records: list[dict],
    num_layers: int,
    kinds: Sequence[str],
    out: Path,
    model_name: str,
    uniform: Callable[[str, float], float] | None = None,
) -> dict:
    """Hierarchy, spread and CFI per (method, level); writes one heatmap per pair and a hierarchy chart.

    For a complete map, ``uniform(method, level)`` (when given) measures the CFI's yardstick: the
    perplexity ratio with every site compressed at once."""
    summary: dict = {}
    medians: dict[str, dict[str, float]] = {}
    for method, level in sorted({(r["method"], float(r["level"])) for r in records}):
        chosen = select(records, method, level)
        label = f"{method}@{level:g}"
        order = hierarchy(chosen)
        s = spread(chosen)
        complete = len(chosen) == num_layers * len(kinds)
        summary[label] = {
            "sites": len(chosen),
            "hierarchy": [{"kind": k, "median_ratio": v} for k, v in order],
            "spread": s.spread, "max_ratio": s.max_ratio, "max_site": s.max_site,
            "min_ratio": s.min_ratio, "min_site": s.min_site,
            "cfi": compression_fragility_index(chosen) if complete else None,
            "uniform_ratio": uniform(method, level) if complete and uniform is not None else None,
        }
        medians[label] = {k: v for k, v in order}
        grid = ratio_map(chosen, num_layers, kinds)
        sensitivity_heatmap(grid, kinds, f"{model_name}: {label}, one matrix compressed at a time",
                            out / f"heatmap_{method}_{level:g}.png")
    if medians:
        ordered = {label: {k: m[k] for k in kinds if k in m} for label, m in medians.items()}
        hierarchy_chart(ordered, f"{model_name}: hierarchy of kinds", out / "hierarchy.png")
    return summary


def sweep_analysis(
    model: Model,
    out: Path,
    *,
    methods: Sequence[str] = ("magnitude", "wanda"),
    levels: Sequence[str] = (),
    text: str = "wiki",
    calib_text: str = "wiki",
    tokens: int = 2048,
    calib_tokens: int = 4096,
    seq_len: int = 256,
    layers: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    window_batch: int = 4,
    config_batch: int = 1,
    on_record: Callable[[int, int], None] | None = None,
) -> dict:
    """Run (or resume) the sweep of ``model`` into ``out`` and write ``summary.json`` and figures.

    The entry point for ``rhojax analyze``. Evaluation windows come from the evaluation split of
    ``text``; Wanda / SparseGPT / activation-aware statistics from the calibration split of ``calib_text``.
    """
    config = model.config
    method_levels = parse_levels(methods, levels)
    grid = sweep_grid(config, method_levels, layers=layers, kinds=kinds)
    eval_windows = corpus_windows(model.tokenizer, text, "evaluation", tokens, seq_len)
    calibration = None
    if any(m in NEEDS_INPUT_NORM + NEEDS_HESSIAN for m in method_levels):
        calib_windows = corpus_windows(model.tokenizer, calib_text, "calibration", calib_tokens, seq_len)
        calibration = calibration_stats(config, model.params, calib_windows,
                                        hessians=any(m in NEEDS_HESSIAN for m in method_levels))
    settings = {
        "text": text, "calib_text": calib_text, "tokens": tokens,
        "calib_tokens": calib_tokens if calibration is not None else 0, "seq_len": seq_len,
    }
    started = time.perf_counter()
    records = run_sweep(
        config, model.params, eval_windows, grid, out / RESULTS, calibration=calibration,
        settings={"model": model.spec, "dtype": model.dtype, **settings},
        seed=seed, window_batch=window_batch, config_batch=config_batch,
        on_record=None if on_record is None else (lambda done: on_record(done, len(grid))),
    )
    elapsed = time.perf_counter() - started
    used_kinds = config.site_kinds if kinds is None else tuple(kinds)
    summary = {
        **run_metadata(model, **settings, seed=seed, methods=method_levels),
        "eval_windows": len(eval_windows), "scored_tokens": int(eval_windows.shape[0] * (seq_len - 1)),
        "dense_ppl": records[0]["dense_ppl"] if records else None, "configurations": len(grid),
        "seconds_this_run": elapsed,
        "maps": summarize(records, config.num_layers, used_kinds, out, model.spec, uniform=lambda method, level:
                          uniform_ratio(config, model.params, eval_windows, method, level, calibration=calibration,
                                        seed=seed, batch_size=window_batch, dense_ppl=records[0]["dense_ppl"])),
    }
    write_json(out / "summary.json", summary)
    return summary


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@guarded
def sweep(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Result folder (sweep.jsonl, summary.json, PNG figures)."),
    methods: list[str] = typer.Option(["magnitude,wanda"], "--methods", help="Comma-separated: magnitude, "
                                      "magnitude_row, wanda, sparsegpt, lowrank, lowrank_aware, rtn, rotated_rtn."),
    levels: list[str] = typer.Option([], "--levels", help="0.5,0.7 for every method, or method=levels "
                                     "(sparsity; rank for lowrank*; bits for *rtn). Repeatable."),
    text: str = TEXT,
    calib_text: str = typer.Option("wiki", "--calib-text", help="Calibration source (its calibration split)."),
    tokens: int = typer.Option(2048, "--tokens", help="Evaluation token budget: windows = tokens // seq-len."),
    calib_tokens: int = typer.Option(4096, "--calib-tokens", help="Calibration token budget."),
    seq_len: int = typer.Option(256, "--seq-len"),
    layers: list[int] = typer.Option([], "--layer", help="Restrict to these layers (repeatable)."),
    kinds: list[str] = typer.Option([], "--kinds", help="Restrict to these kinds, comma-separated."),
    seed: int = typer.Option(0, "--seed", help="Seed of the randomised operators (rotated_rtn)."),
    window_batch: int = typer.Option(4, "--window-batch", help="Evaluation windows per compiled call."),
    config_batch: int = typer.Option(1, "--config-batch", help="Configurations of one layer run together (vmap)."),
    compare: Path | None = typer.Option(None, "--compare", help="Another sweep folder: Kendall tau of kinds."),
    dtype: str = DTYPE,
) -> None:
    """Per-matrix sensitivity map of MODEL: compress one (layer, kind) at a time, everything else dense.

    Records perplexity ratio (evaluation split) and final-state drift per configuration in sweep.jsonl
    as it goes; rerunning with the same arguments resumes.
    """
    method_levels = parse_levels(_split(methods), levels)  # fail fast, before loading the model
    out = output_dir(out)
    loaded = load_model(model, dtype=dtype)
    if text not in ("wiki", "lambada", "news") and text == calib_text:
        console.print(f"note: --text and --calib-text are the same file {text}: calibration and evaluation overlap")
    grid_size = len(sweep_grid(loaded.config, method_levels, layers=layers or None, kinds=_split(kinds) or None))
    with progress_bar(f"sweep {model} ({grid_size} configurations)", grid_size) as update:
        summary = sweep_analysis(
            loaded, out, methods=_split(methods), levels=levels, text=text, calib_text=calib_text, tokens=tokens,
            calib_tokens=calib_tokens, seq_len=seq_len, layers=layers or None, kinds=_split(kinds) or None,
            seed=seed, window_batch=window_batch, config_batch=config_batch, on_record=lambda done, _: update(done),
        )
    console.print(f"dense perplexity {summary['dense_ppl']:.4f} on {summary['scored_tokens']} scored tokens")
    for label, m in summary["maps"].items():
        order = " > ".join(h["kind"] for h in m["hierarchy"])
        cfi = "" if m["cfi"] is None else f", CFI {m['cfi']:.4f} (all sites at once: ppl x{m['uniform_ratio']:.3g})"
        console.print(f"{label}: hierarchy {order}; spread {m['spread']:.3g}x{cfi}")
    if compare is not None:
        other = read_jsonl(Path(compare) / RESULTS)
        mine = read_jsonl(out / RESULTS)
        for method, level in sorted({(r["method"], float(r["level"])) for r in mine}):
            tau = kind_rank_transfer(select(mine, method, level), select(other, method, level))
            console.print(f"rank transfer of kinds vs {compare} ({method}@{level:g}): Kendall tau {tau:.3f}")
    console.print(f"wrote {out / RESULTS}, {out / 'summary.json'} and figures")
