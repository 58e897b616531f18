"""``rhojax analyze``: the main job on one model, writing every result under one folder."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.basics import DTYPE, MODEL, measure_perplexity, model_summary
from rhojax.commands.common import console, guarded, output_dir, run_metadata
from rhojax.data.windows import DEFAULT_SEQ_LEN
from rhojax.io.resolve import load_model
from rhojax.report.jsonio import write_json


@guarded
def analyze(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Result folder."),
    tokens: int = typer.Option(12288, "--tokens", help="Evaluation token budget."),
    seq_len: int = typer.Option(DEFAULT_SEQ_LEN, "--seq-len"),
    dtype: str = DTYPE,
) -> None:
    """Run the full analysis of MODEL and save it under --out (summary.json)."""
    out = output_dir(out)
    loaded = load_model(model, dtype=dtype)
    summary = model_summary(loaded)
    console.print(f"{model}: {summary['parameters']:,} parameters, {summary['layers']} layers")
    result = measure_perplexity(loaded, "wiki", tokens, seq_len, batch_size=4)
    console.print(f"perplexity {result.perplexity:.4f} on {result.scored_tokens} scored tokens")
    write_json(out / "summary.json", {**run_metadata(loaded), "info": summary, "perplexity": result.to_dict()})
    console.print(f"wrote {out / 'summary.json'}")
