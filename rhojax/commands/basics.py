"""``rhojax info`` and ``rhojax ppl``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rhojax.commands.common import (
    DEVICES,
    DTYPE,
    MODEL,
    MODEL_PARALLEL,
    console,
    guarded,
    output_dir,
    placed,
    progress,
    run_metadata,
)
from rhojax.commands.options import with_settings
from rhojax.eval.perplexity_study import PerplexitySettings, run_perplexity_study
from rhojax.io.resolve import describe, load_model
from rhojax.io.stream import open_model
from rhojax.report.jsonio import write_json


@guarded
def info(model: str = MODEL, dtype: str = DTYPE) -> None:
    """Architecture, parameter count, layers and weight-matrix sites of MODEL."""
    summary = describe(load_model(model, dtype=dtype))
    table = Table(title=f"rhojax info {model}", show_header=False)
    for key, value in summary.items():
        if isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        table.add_row(key, str(value))
    console.print(table)
    console.print("sites are addressed as (layer, kind), kind in " + ", ".join(summary["site_kinds"]))


@guarded
@with_settings(PerplexitySettings)
def ppl(
    model: str = MODEL,
    dtype: str = DTYPE,
    out: Path | None = typer.Option(None, "--out", help="Folder for ppl.json."),
    devices: int = DEVICES,
    model_parallel: int = MODEL_PARALLEL,
    settings: PerplexitySettings = PerplexitySettings(),
) -> None:
    """Perplexity of MODEL on the evaluation split (or --text FILE), [BOS] + (seq-len - 1)-token windows."""
    loaded, mesh = placed(open_model(model, dtype=dtype, stream=settings.stream,
                                     memory_budget=settings.memory_budget), devices, model_parallel)
    result = run_perplexity_study(loaded, settings, progress=progress(), mesh=mesh)
    lo, hi = result["ci"]
    console.print(
        f"perplexity {result['perplexity']:.4f} [95% {lo:.4f}, {hi:.4f}] on {result['scored_tokens']} scored tokens "
        f"({result['windows']} windows x {settings.seq_len}, text={settings.text}, evaluation split)"
    )
    if out is not None:
        path = write_json(output_dir(out) / "ppl.json", {**run_metadata(loaded), **result})
        console.print(f"wrote {path}")
