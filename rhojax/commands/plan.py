"""``rhojax plan``: a budgeted compression plan for one model (:mod:`rhojax.plan.study`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.common import DTYPE, MODEL, console, guarded, open_run, progress, save_summary
from rhojax.commands.options import with_settings
from rhojax.io.resolve import load_model
from rhojax.io.save_hf import save_hf
from rhojax.plan import PlanSettings, run_plan_study
from rhojax.plan.actions import Plan, apply_plan
from rhojax.plan.pack import save_packed as write_packed


@guarded
@with_settings(PlanSettings)
def plan(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder (plan.json, parts/, model/ with --save-model, packed/ "
                             "with --save-packed)."),
    save_model: bool = typer.Option(False, "--save-model", help="Also save the planned model (HF safetensors, "
                                    "weights in dense form) to OUT/model."),
    save_packed: bool = typer.Option(False, "--save-packed", help="Also save the planned model packed (each matrix "
                                     "stored as its action's pieces, at the plan's bytes) to OUT/packed."),
    dtype: str = DTYPE,
    settings: PlanSettings = PlanSettings(),
) -> None:
    """Plan MODEL at --target (params, flops or bytes) from its own measurements; with --apply, verify it."""
    loaded = load_model(model, dtype=dtype)
    run = open_run(out, loaded, settings)
    summary = save_summary(run, "plan.json", loaded, run_plan_study(loaded, run, settings, progress=progress()))
    p, curve = summary["plan"], summary["loss_curve"]
    used = p["budget_used"][summary["unit"]]
    console.print(f"plan at {settings.target}: {len(p['removed_layers'])} blocks removed, {used:.3f} of the "
                  f"{summary['unit']} used, predicted loss increase {p['predicted_delta_loss']:.4f} nats/token "
                  f"(loss curve p {curve['p']:.2f}, depth exponent {curve['gamma']:.2f})")
    if settings.apply:
        console.print(f"measured: perplexity {p['perplexity']:.3f} (dense {summary['dense']['perplexity']:.3f}, "
                      f"ratio {p['ratio']:.3f}, 95% [{p['ratio_ci'][0]:.3f}, {p['ratio_ci'][1]:.3f}])")
        for row in summary["baselines"]:
            console.print(f"  {row['name']}: " + (row["skipped"] if "skipped" in row else
                                                   f"perplexity {row['perplexity']:.3f} (ratio {row['ratio']:.3f})"))
    loop = summary.get("closed_loop")
    if loop is not None:
        layers = ", ".join(f"{k} (x{v:.2f})" for k, v in loop["corrected_layers"].items()) or "none"
        console.print(f"closed loop: corrected layers {layers}; " + (
            loop["note"] if not loop["changed"] else
            f"re-plan perplexity {loop['replan']['perplexity']:.3f}, x{loop['replan_vs_plan']:.3f} of the plan's "
            f"(95% [{loop['replan_vs_plan_ci'][0]:.3f}, {loop['replan_vs_plan_ci'][1]:.3f}])"))
    if save_model or save_packed:
        s, planned = settings, Plan.from_dict(p)
        config, params = apply_plan(loaded.config, loaded.params, planned, s.plan_windows(loaded.tokenizer)[1],
                                    batch_size=s.batch_size)
        if save_model:
            save_hf(config, params, run.file("model"), tokenizer=loaded.tokenizer)
            console.print(f"saved the planned model to {run.file('model')}")
        if save_packed:
            write_packed(config, params, planned, run.file("packed"), tokenizer=loaded.tokenizer)
            console.print(f"saved the packed planned model to {run.file('packed')}")
    console.print(f"wrote {run.file('plan.json')}")
