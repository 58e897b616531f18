"""Shared pieces of the command line: error handling, progress, run folders, metadata, argument specs."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from rhojax.errors import RhojaxError
from rhojax.progress import Progress, console_progress
from rhojax.provenance import provenance
from rhojax.runs import RunFolder

console = Console(stderr=True)

MODEL = typer.Argument(..., help="Packaged name (smollm2-135m), a local Hugging Face folder, or a .gguf file.")
TEXT = typer.Option("wiki", "--text", help="wiki, lambada, news, or a path to a UTF-8 text file.")
DTYPE = typer.Option("float32", "--dtype", help="float32 or bfloat16.")
DEVICES = typer.Option(1, "--devices", help="Devices to split the work over: 1 (default) runs on one device, "
                       "0 on every visible device (every host's after jax.distributed.initialize).")
MODEL_PARALLEL = typer.Option(1, "--model-parallel", help="Devices that share one copy of the weights "
                              "(tensor-parallel, for a model larger than one device); must divide --devices.")


def placed(model, devices: int, model_parallel: int):
    """``(model, mesh)``: the model placed over a mesh of ``devices`` (see :mod:`rhojax.sharding`), or the
    model unchanged and ``None`` for the single-device default."""
    from rhojax.io.stream import BlockStream
    from rhojax.sharding import device_mesh, shard_model

    mesh = device_mesh(devices, model_parallel)
    if mesh is not None and isinstance(model, BlockStream):
        raise RhojaxError("a streamed model runs on one device: drop --stream (and --memory-budget) or --devices")
    return shard_model(model, mesh), mesh


def guarded(fn: Callable) -> Callable:
    """Turn a :class:`RhojaxError` into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RhojaxError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def progress() -> Progress:
    """Progress on stderr: rich bars on a terminal, plain lines in logs."""
    return console_progress(console)


def output_dir(out: Path) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RhojaxError(f"--out {out}: cannot create the output folder ({e})") from e
    return out


def open_run(out: Path, model, settings) -> RunFolder:
    """The run folder ``out`` for ``model`` under ``settings`` (refused if it holds other settings)."""
    return RunFolder.for_study(out, model, settings)


def run_metadata(model, **settings) -> dict:
    """What a result file needs to be reproducible: model, dtype, settings and provenance."""
    return {"model": model.spec, "model_source": str(model.source), "dtype": model.dtype, **settings,
            "provenance": provenance()}


def save_summary(run: RunFolder, name: str, model, summary: dict,
                 draw: Callable[[Path, dict], object] | None = None) -> dict:
    """Write ``summary`` (with model metadata) as ``name`` in the run folder, then ``draw(folder, summary)``
    its figures from the file as written; returns the JSON as read back."""
    path = run.write(name, {**run_metadata(model), **summary})
    summary = json.loads(path.read_text())
    if draw is not None:
        draw(run.path, summary)
    return summary
