"""``rhojax heal``: recovery training of a compressed model (the work is in :mod:`rhojax.heal`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rhojax.commands.basics import DTYPE, MODEL
from rhojax.commands.common import console, guarded, output_dir, run_metadata
from rhojax.data.windows import DEFAULT_SEQ_LEN
from rhojax.heal import HealProtocol, HealSettings, heal_study
from rhojax.io.resolve import load_model


@guarded
def heal(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Run folder: heal.json, state/ (resume), model/ (orbax checkpoint)."),
    mode: str = typer.Option("lora", "--mode", help="norms (norm scales and biases) or lora (low-rank adapters)."),
    rank: int = typer.Option(8, "--rank", help="Adapter rank (mode lora)."),
    kinds: str = typer.Option("q,k,v,o,gate,up,down", "--kinds", help="Matrix kinds with adapters (mode lora)."),
    steps: int = typer.Option(200, "--steps"),
    lr: float = typer.Option(2e-4, "--lr", help="Peak AdamW learning rate (warm-up, then cosine decay)."),
    warmup: int = typer.Option(20, "--warmup", help="Warm-up steps."),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    quant_bits: int | None = typer.Option(None, "--quant-bits", help="The model is RTN-quantized at this many bits: "
                                          "healed weights are rounded back onto its grid."),
    group_size: int | None = typer.Option(None, "--group-size", help="Quantization group size (with --quant-bits)."),
    dense: str | None = typer.Option(None, "--dense", help="The uncompressed model, for the perplexity gap."),
    dtype: str = DTYPE,
    calib_tokens: int = typer.Option(65536, "--calib-tokens", help="Calibration-split training tokens."),
    eval_tokens: int = typer.Option(4096, "--tokens", help="Evaluation-split tokens for perplexity."),
    seq_len: int = typer.Option(DEFAULT_SEQ_LEN, "--seq-len", help="Evaluation window length."),
    train_seq_len: int | None = typer.Option(None, "--train-seq-len", help="Training window length "
                                             "(default: --seq-len)."),
    batch_size: int = typer.Option(4, "--batch-size"),
    tasks: str = typer.Option("arc_easy,piqa", "--tasks", help="Zero-shot tasks (comma-separated, '' for none)."),
    task_limit: int = typer.Option(100, "--task-limit", help="First N items of each task."),
    seed: int = typer.Option(0, "--seed"),
    save_hf: bool = typer.Option(False, "--save-hf", help="Also save the healed model as HF safetensors (model_hf/)."),
) -> None:
    """Recover a compressed MODEL by training norms or low-rank adapters on the calibration split."""
    out = output_dir(out)
    settings = HealSettings(mode=mode, rank=rank, kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
                            steps=steps, learning_rate=lr, warmup_steps=warmup, weight_decay=weight_decay,
                            batch_size=batch_size, seed=seed, quant_bits=quant_bits, group_size=group_size)
    protocol = HealProtocol(calib_tokens=calib_tokens, eval_tokens=eval_tokens, seq_len=seq_len,
                            train_seq_len=train_seq_len, tasks=tasks,
                            task_limit=task_limit, batch_size=batch_size)
    loaded = load_model(model, dtype=dtype)
    reference = load_model(dense, dtype=dtype) if dense else None

    def report(step: int, loss: float) -> None:
        if step == 1 or step % 10 == 0 or step == steps:
            console.print(f"step {step}/{steps}  training loss {loss:.4f}")

    record = heal_study(loaded, out, settings, protocol, dense=reference, on_step=report,
                        metadata=run_metadata(loaded, dense_model=dense), save_hf_copy=save_hf)
    line = f"perplexity {record['before']['perplexity']:.3f} -> {record['after']['perplexity']:.3f}"
    if "gap_recovered" in record:
        line += f" (dense {record['dense']['perplexity']:.3f}; {record['gap_recovered']:.0%} of the gap recovered)"
    console.print(line)
    console.print(f"wrote {out / 'heal.json'} and the healed model {out / 'model'}")
