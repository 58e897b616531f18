"""``rhojax analyze``: the main job on one model, every study in its own resumable subfolder.

Steps (each one the same function its own command runs, with budgets sized for a 2-core CPU):

- ``info``: architecture and the evaluation perplexity (``summary.json``);
- ``profile``: contraction profile, drift, absorption (``rhojax profile``);
- ``sweep``: per-matrix sensitivity map, magnitude and Wanda at 50% (``rhojax sweep``);
- ``eval``: zero-shot multiple-choice accuracy on the first items of each task (``rhojax eval``);
- ``bounds``: the bound checker over the real matrices (``rhojax bounds``);
- ``depth``: depth pruning and sparsity allocation (``rhojax prune-depth`` / ``allocate``);
- ``structure``: variance vs importance, block linear replacement, early exit (``rhojax structure``).

Every step writes as it goes and skips finished work, so an interrupted ``analyze`` resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from rhojax.commands.basics import measure_perplexity, model_summary
from rhojax.commands.bounds import run_bounds
from rhojax.commands.common import DTYPE, MODEL, console, guarded, output_dir, run_metadata
from rhojax.data.windows import DEFAULT_SEQ_LEN
from rhojax.depth.study import DepthSettings, run_depth_study
from rhojax.errors import RhojaxError
from rhojax.eval.study import EvalSettings, run_eval_study
from rhojax.io.resolve import Model, load_model
from rhojax.propagation.study import ProfileSettings, run_profile_study
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder
from rhojax.sensitivity.study import SweepSettings, run_sweep_study
from rhojax.structure.study import StructureSettings, run_structure_study


def _info(model: Model, out: Path, tokens: int, seq_len: int) -> dict:
    result = measure_perplexity(model, "wiki", tokens, seq_len, batch_size=4)
    console.print(f"perplexity {result.perplexity:.4f} on {result.scored_tokens} scored tokens")
    summary = {**run_metadata(model), "info": model_summary(model), "perplexity": result.to_dict()}
    write_json(out / "summary.json", summary)
    return summary


STEPS: dict[str, Callable[[Model, Path, int, int, int], object]] = {
    "info": lambda m, out, tokens, seq_len, limit: _info(m, out, tokens, seq_len),
    "profile": lambda m, out, tokens, seq_len, limit: run_profile_study(
        m, RunFolder.open(out / "profile", ProfileSettings()), ProfileSettings()),
    "sweep": lambda m, out, tokens, seq_len, limit: run_sweep_study(
        m, RunFolder.open(out / "sensitivity", SweepSettings()), SweepSettings()),
    "eval": lambda m, out, tokens, seq_len, limit: run_eval_study(
        m, RunFolder.open(out / "eval", EvalSettings(limit=limit)), EvalSettings(limit=limit)),
    "bounds": lambda m, out, tokens, seq_len, limit: run_bounds(m, out / "bounds"),
    "depth": lambda m, out, tokens, seq_len, limit: run_depth_study(
        m, RunFolder.open(out / "depth", DepthSettings()), DepthSettings()),
    "structure": lambda m, out, tokens, seq_len, limit: run_structure_study(
        m, RunFolder.open(out / "structure", StructureSettings(ablate_every=2)), StructureSettings(ablate_every=2)),
}


@guarded
def analyze(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Result folder (one subfolder per step)."),
    steps: str = typer.Option(",".join(STEPS), "--steps", help="Comma-separated subset of: " + ", ".join(STEPS)),
    tokens: int = typer.Option(12288, "--tokens", help="Evaluation token budget of the perplexity step."),
    seq_len: int = typer.Option(DEFAULT_SEQ_LEN, "--seq-len"),
    limit: int = typer.Option(200, "--limit", help="Items per task in the eval step."),
    dtype: str = DTYPE,
) -> None:
    """Run the full analysis of MODEL and save it under --out; rerun the same command to resume."""
    chosen = [s.strip() for s in steps.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        raise RhojaxError(f"--steps: unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    out = output_dir(out)
    loaded = load_model(model, dtype=dtype)
    console.print(f"{model}: {loaded.config.num_layers} layers; steps: {', '.join(chosen)} -> {out}")
    for i, name in enumerate(chosen, 1):
        console.rule(f"[{i}/{len(chosen)}] {name}")
        STEPS[name](loaded, out, tokens, seq_len, limit)
    console.print(f"done: results under {out}")
