"""``rhojax profile``: the contraction profile of one model (:mod:`rhojax.propagation.study`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.common import (
    DEVICES,
    DTYPE,
    MODEL,
    MODEL_PARALLEL,
    console,
    guarded,
    open_run,
    placed,
    progress,
    save_summary,
)
from rhojax.commands.options import with_settings
from rhojax.io.stream import open_model
from rhojax.propagation.study import ProfileSettings, run_profile_study
from rhojax.report import propagation_figures


@guarded
@with_settings(ProfileSettings)
def profile(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (profile.json, PNG figures, parts/ for resuming)."),
    dtype: str = DTYPE,
    devices: int = DEVICES,
    model_parallel: int = MODEL_PARALLEL,
    settings: ProfileSettings = ProfileSettings(),
) -> None:
    """Contraction profile of MODEL: rho, alpha/beta, V_t, Jacobian gains, drift, post-compression, absorption."""
    loaded, mesh = placed(open_model(model, dtype=dtype, stream=settings.stream,
                                     memory_budget=settings.memory_budget), devices, model_parallel)
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "profile.json", loaded,
                           run_profile_study(loaded, run, settings, progress=progress(), mesh=mesh),
                           propagation_figures.draw_profile_figures)
    if "streamed" in summary:
        console.print(f"streamed: rho, the eps sweep and the Jacobian gain over {summary['layers']} layers "
                      f"(left out: {', '.join(summary['streamed']['omitted'])})")
    else:
        c = summary["drift"]["correlation"]
        console.print(f"predicted vs measured drift: Spearman {c['spearman']:.3f} "
                      f"[{c['spearman_ci'][0]:.3f}, {c['spearman_ci'][1]:.3f}] over {summary['layers']} layers")
    console.print(f"wrote {run.file('profile.json')} and figures")
