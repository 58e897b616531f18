"""``rhojax info`` and ``rhojax ppl``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rhojax.commands.common import DTYPE, MODEL, TEXT, console, guarded, output_dir, progress_bar, run_metadata
from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows
from rhojax.eval.perplexity import PerplexityResult, perplexity
from rhojax.io.resolve import Model, load_model
from rhojax.models.params import count_params
from rhojax.report.jsonio import write_json


def model_summary(model: Model) -> dict:
    c = model.config
    return {
        "model": model.spec,
        "source": str(model.source),
        "family": c.family,
        "architecture": c.name,
        "parameters": count_params(model.params),
        "layers": c.num_layers,
        "hidden_size": c.hidden_size,
        "heads": f"{c.num_heads} query / {c.num_kv_heads} key-value, head_dim {c.head_dim}",
        "intermediate_size": c.intermediate_size,
        "vocab_size": c.vocab_size,
        "tied_embeddings": c.tie_embeddings,
        "site_kinds": list(c.site_kinds),
        "sites": len(c.sites),
        "dtype": model.dtype,
    }


@guarded
def info(model: str = MODEL, dtype: str = DTYPE) -> None:
    """Architecture, parameter count, layers and weight-matrix sites of MODEL."""
    summary = model_summary(load_model(model, dtype=dtype))
    table = Table(title=f"rhojax info {model}", show_header=False)
    for key, value in summary.items():
        table.add_row(
            key,
            ", ".join(value)
            if isinstance(value, list)
            else f"{value:,}"
            if isinstance(value, int) and not isinstance(value, bool)
            else str(value),
        )
    console.print(table)
    console.print("sites are addressed as (layer, kind), kind in " + ", ".join(summary["site_kinds"]))


def measure_perplexity(model: Model, text: str, tokens: int, seq_len: int, batch_size: int) -> PerplexityResult:
    windows = corpus_windows(model.tokenizer, text, "evaluation", tokens, seq_len)
    with progress_bar(f"perplexity ({len(windows)} x {seq_len} tokens)", len(windows)) as update:
        return perplexity(model.config, model.params, windows, batch_size=batch_size, on_batch=update)


@guarded
def ppl(
    model: str = MODEL,
    text: str = TEXT,
    tokens: int = typer.Option(12288, "--tokens", help="Token budget: windows = tokens // seq-len."),
    seq_len: int = typer.Option(DEFAULT_SEQ_LEN, "--seq-len"),
    batch_size: int = typer.Option(4, "--batch-size"),
    dtype: str = DTYPE,
    out: Path | None = typer.Option(None, "--out", help="Folder for ppl.json."),
) -> None:
    """Perplexity of MODEL on the evaluation split (or --text FILE), [BOS] + (seq-len - 1)-token windows."""
    loaded = load_model(model, dtype=dtype)
    result = measure_perplexity(loaded, text, tokens, seq_len, batch_size)
    console.print(
        f"perplexity {result.perplexity:.4f} on {result.scored_tokens} scored tokens "
        f"({result.windows} windows x {seq_len}, text={text}, evaluation split)"
    )
    if out is not None:
        path = write_json(output_dir(out) / "ppl.json", {**run_metadata(loaded, text=text), **result.to_dict()})
        console.print(f"wrote {path}")
