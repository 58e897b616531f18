"""``rhojax prune-depth`` and ``rhojax allocate``: one depth pruning or one sparsity allocation
(:mod:`rhojax.depth.study`), each in its own run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.common import DTYPE, MODEL, console, guarded, open_run, progress, save_summary
from rhojax.commands.options import with_settings
from rhojax.depth import remove_layers
from rhojax.depth.study import AllocateSettings, PruneDepthSettings, Study, run_allocation, run_prune_depth
from rhojax.io.checkpoint import save_checkpoint as write_checkpoint
from rhojax.io.resolve import load_model
from rhojax.io.save_hf import save_hf

SAVE_MODEL = typer.Option(False, "--save-model", help="Also save the pruned model (HF safetensors) to OUT/model.")
SAVE_CHECKPOINT = typer.Option(False, "--save-checkpoint",
                               help="Also save the pruned model as a rhojax (orbax) checkpoint to OUT/checkpoint.")


def _run(model: str, dtype: str, out: Path, settings, study, name: str):
    """Load MODEL, open its run folder under ``settings``, run ``study`` and save its summary as ``name``."""
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    return loaded, run, save_summary(run, name, loaded, study(loaded, run, settings, progress=progress()))


def _save(run, loaded, config, params, *, hf: bool, checkpoint: bool, metadata: dict) -> None:
    """The pruned model as HF safetensors (OUT/model) and/or an orbax checkpoint (OUT/checkpoint)."""
    if hf:
        save_hf(config, params, run.file("model"), tokenizer=loaded.tokenizer)
        console.print(f"saved the pruned model to {run.file('model')}")
    if checkpoint:
        write_checkpoint(config, params, run.file("checkpoint"), tokenizer=loaded.tokenizer,
                         metadata={"pruned_from": loaded.spec, **metadata})
        console.print(f"saved the pruned model's checkpoint to {run.file('checkpoint')}")


@guarded
@with_settings(PruneDepthSettings)
def prune_depth(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (prune_depth.json, parts/, model/ with --save-model)."),
    save_model: bool = SAVE_MODEL,
    save_checkpoint: bool = SAVE_CHECKPOINT,
    dtype: str = DTYPE,
    settings: PruneDepthSettings = PruneDepthSettings(),
) -> None:
    """Physically delete --remove layers of MODEL chosen by |rho - 1|, Block Influence or their rank blend."""
    loaded, run, summary = _run(model, dtype, out, settings, run_prune_depth, "prune_depth.json")
    console.print(f"removed layers {summary['removed_layers']}: perplexity {summary['dense']['perplexity']:.3f} -> "
                  f"{summary['pruned']['perplexity']:.3f} (ratio {summary['pruned']['ratio']:.3f}, 95% "
                  f"[{summary['pruned']['ratio_ci'][0]:.3f}, {summary['pruned']['ratio_ci'][1]:.3f}])")
    if save_model or save_checkpoint:
        _save(run, loaded, *remove_layers(loaded.config, loaded.params, summary["removed_layers"]), hf=save_model,
              checkpoint=save_checkpoint, metadata={"removed_layers": summary["removed_layers"]})
    console.print(f"wrote {run.file('prune_depth.json')}")


@guarded
@with_settings(AllocateSettings)
def allocate(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (allocation.json, parts/, model/ with --save-model)."),
    save_model: bool = SAVE_MODEL,
    save_checkpoint: bool = SAVE_CHECKPOINT,
    dtype: str = DTYPE,
    settings: AllocateSettings = AllocateSettings(),
) -> None:
    """Prune MODEL to a mean --sparsity with a layer-wise --schedule and Wanda or SparseGPT inside each layer."""
    loaded, run, summary = _run(model, dtype, out, settings, run_allocation, "allocation.json")
    console.print(f"{settings.schedule} / {settings.method} at {settings.sparsity:.0%}: perplexity "
                  f"{summary['perplexity']:.3f} (dense {summary['dense']['perplexity']:.3f}, ratio "
                  f"{summary['ratio']:.3f}, 95% [{summary['ratio_ci'][0]:.3f}, {summary['ratio_ci'][1]:.3f}])")
    if save_model or save_checkpoint:
        pruned = Study(loaded, run, settings).pruned_params(summary["ratios"], settings.method)
        _save(run, loaded, loaded.config, pruned, hf=save_model, checkpoint=save_checkpoint,
              metadata={"method": settings.method, "schedule": settings.schedule, "ratios": summary["ratios"]})
    console.print(f"wrote {run.file('allocation.json')}")
