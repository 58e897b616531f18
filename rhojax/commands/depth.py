"""``rhojax prune-depth`` and ``rhojax allocate``: one depth pruning or one sparsity allocation
(:mod:`rhojax.depth.study`), each in its own run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.common import DTYPE, MODEL, console, guarded, open_run, progress, save_summary
from rhojax.commands.options import with_settings
from rhojax.depth import remove_layers
from rhojax.depth.study import AllocateSettings, PruneDepthSettings, Study, run_allocation, run_prune_depth
from rhojax.io.resolve import load_model
from rhojax.io.save_hf import save_hf

SAVE_MODEL = typer.Option(False, "--save-model", help="Also save the pruned model (HF safetensors) to OUT/model.")


@guarded
@with_settings(PruneDepthSettings)
def prune_depth(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (prune_depth.json, parts/, model/ with --save-model)."),
    save_model: bool = SAVE_MODEL,
    dtype: str = DTYPE,
    settings: PruneDepthSettings = PruneDepthSettings(),
) -> None:
    """Physically delete --remove layers of MODEL chosen by |rho - 1|, Block Influence or their rank blend."""
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "prune_depth.json", loaded, run_prune_depth(loaded, run, settings, progress=progress()))
    console.print(f"removed layers {summary['removed_layers']}: perplexity {summary['dense']['perplexity']:.3f} -> "
                  f"{summary['pruned']['perplexity']:.3f} (ratio {summary['pruned']['ratio']:.3f}, 95% "
                  f"[{summary['pruned']['ratio_ci'][0]:.3f}, {summary['pruned']['ratio_ci'][1]:.3f}])")
    if save_model:
        config, params = remove_layers(loaded.config, loaded.params, summary["removed_layers"])
        save_hf(config, params, run.file("model"), tokenizer=loaded.tokenizer)
        console.print(f"saved the pruned model to {run.file('model')}")
    console.print(f"wrote {run.file('prune_depth.json')}")


@guarded
@with_settings(AllocateSettings)
def allocate(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (allocation.json, parts/, model/ with --save-model)."),
    save_model: bool = SAVE_MODEL,
    dtype: str = DTYPE,
    settings: AllocateSettings = AllocateSettings(),
) -> None:
    """Prune MODEL to a mean --sparsity with a layer-wise --schedule and Wanda or SparseGPT inside each layer."""
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "allocation.json", loaded, run_allocation(loaded, run, settings, progress=progress()))
    console.print(f"{settings.schedule} / {settings.method} at {settings.sparsity:.0%}: perplexity "
                  f"{summary['perplexity']:.3f} (dense {summary['dense']['perplexity']:.3f}, ratio "
                  f"{summary['ratio']:.3f}, 95% [{summary['ratio_ci'][0]:.3f}, {summary['ratio_ci'][1]:.3f}])")
    if save_model:
        params = Study(loaded, run, settings).pruned_params(summary["ratios"], settings.method)
        save_hf(loaded.config, params, run.file("model"), tokenizer=loaded.tokenizer)
        console.print(f"saved the pruned model to {run.file('model')}")
    console.print(f"wrote {run.file('allocation.json')}")
