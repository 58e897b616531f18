"""``rhojax structure``: variance vs importance, block linear replacement and early exit
(:mod:`rhojax.structure.study`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.common import DTYPE, MODEL, console, guarded, open_run, progress, save_summary
from rhojax.commands.options import with_settings
from rhojax.io.resolve import load_model
from rhojax.report.structure_figures import draw_structure_figures
from rhojax.structure.study import StructureSettings, run_structure_study


@guarded
@with_settings(StructureSettings)
def structure(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (structure.json, PNG figures, parts/ for resuming)."),
    dtype: str = DTYPE,
    settings: StructureSettings = StructureSettings(),
) -> None:
    """Variance vs importance, block linear replacement and early exit of MODEL (JSON + PNG under --out)."""
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "structure.json", loaded,
                           run_structure_study(loaded, run, settings, progress=progress()), draw_structure_figures)
    h = summary["headline"]
    best = h["best_single_replacement"]
    console.print(
        f"dense perplexity {summary['dense_perplexity']:.3f}; best single-block replacement: block {best['start']} "
        f"(R^2 {best['r2']:.3f}, perplexity {best['perplexity']:.3f}, {best['compression_ratio']:.1f}x); "
        f"mean overlap {h['mean_overlap']:.3f} (chance {h['chance_overlap']:.3f}); "
        f"settled at half depth {h['settled_at_half_depth']:.1%}"
    )
    console.print(f"wrote {run.file('structure.json')} and figures")
