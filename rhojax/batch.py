"""Batch runs: one TOML file lists models, studies and budgets; one call runs them all and compares the models.

A config (every key but ``models`` optional)::

    out = "results"                      # results root, relative to the config file
    budget = "quick"                     # smoke, quick, standard or paper (rhojax.analysis budgets)
    studies = ["perplexity", "profile", "sensitivity"]   # default: every study of the main job
    dtype = "float32"                    # or bfloat16
    text = "wiki"                        # every study reads this corpus or text file
    devices = 0                          # 0: every visible device, 1: one device, N: the first N
    model_parallel = 1                   # devices sharing one copy of the weights (tensor-parallel)

    [settings.profile]                   # fields of a study's settings, over the budget's
    samples = 8

    [[models]]
    spec = "smollm2-135m"                # packaged name, Hugging Face folder or .gguf file
    [[models]]
    spec = "models/my-llama"             # relative paths: from the config file
    name = "my-llama"                    # results sub-folder (default: from spec)
    budget = "smoke"                     # per model: budget, dtype, text and [models.settings.STUDY]

:func:`run_batch` runs the main job (:func:`rhojax.analysis.run_analysis`) on each model in its own folder
``out/NAME`` (each resumes after an interruption from its finished parts), then writes
``out/comparison.json`` and ``out/comparison.md``: one row per model.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rhojax.analysis.budgets import BUDGETS, AnalysisSettings
from rhojax.analysis.job import STUDIES, check_studies, run_analysis
from rhojax.errors import RhojaxError
from rhojax.io.resolve import load_model
from rhojax.progress import SILENT, Progress
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.sharding import device_mesh, shard_model


class BatchConfigError(RhojaxError):
    """A batch config that cannot be used as written (the message names the key)."""


#: Top-level keys of a config, the keys of one ``[[models]]`` entry, and the type each must have.
CONFIG_KEYS: dict[str, type] = {"out": str, "budget": str, "studies": list, "dtype": str, "text": str,
                                "devices": int, "model_parallel": int, "settings": dict, "models": list}
MODEL_KEYS: dict[str, type] = {"spec": str, "name": str, "budget": str, "dtype": str, "text": str, "settings": dict}
DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class BatchModel:
    """One model of a batch: where it comes from, its results folder name and its settings."""

    spec: str
    name: str
    budget: str
    dtype: str
    settings: AnalysisSettings


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    """A parsed batch config (see the module docstring)."""

    out: Path
    studies: tuple[str, ...]
    devices: int
    model_parallel: int
    models: tuple[BatchModel, ...]


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
            dict: "a table"}.get(t, t.__name__)


def _check_keys(table: dict, allowed: dict[str, type], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise BatchConfigError(f"{where}{key}: unknown key (allowed: {', '.join(allowed)})")
        expected = allowed[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise BatchConfigError(f"{where}{key}: expected {_type_name(expected)}, got {value!r}")


def _setting_value(value: Any, annotation, where: str) -> Any:
    """``value`` from TOML as the settings field's type (lists become tuples of the element type)."""
    if typing.get_origin(annotation) is tuple:
        element = typing.get_args(annotation)[0]
        if not isinstance(value, list):
            raise BatchConfigError(f"{where}: expected a list of {element.__name__}, got {value!r}")
        return tuple(_setting_value(v, element, where) for v in value)
    ok = {bool: lambda v: isinstance(v, bool), int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}[annotation]
    if not ok(value):
        raise BatchConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
    return float(value) if annotation is float else value


def apply_overrides(settings: AnalysisSettings, overrides: dict, where: str) -> AnalysisSettings:
    """``settings`` with ``overrides`` (``{study: {field: value}}``) applied, every name and type checked."""
    studies = {f.name for f in dataclasses.fields(AnalysisSettings)}
    changed = {}
    for study, fields in overrides.items():
        if study not in studies:
            raise BatchConfigError(f"{where}{study}: unknown study (choose from {', '.join(sorted(studies))})")
        if not isinstance(fields, dict):
            raise BatchConfigError(f"{where}{study}: expected a table of settings, got {fields!r}")
        current = getattr(settings, study)
        hints = typing.get_type_hints(type(current))
        values = {}
        for name, value in fields.items():
            if name not in hints:
                raise BatchConfigError(f"{where}{study}.{name}: unknown setting of {study} "
                                       f"(choose from {', '.join(hints)})")
            values[name] = _setting_value(value, hints[name], f"{where}{study}.{name}")
        changed[study] = dataclasses.replace(current, **values)
    return dataclasses.replace(settings, **changed)


def _choice(value: str, choices, where: str) -> str:
    if value not in choices:
        raise BatchConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _folder_name(spec: str) -> str:
    stem = Path(spec).name.removesuffix(".gguf") if ("/" in spec or spec.endswith(".gguf")) else spec
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "model"


def _spec(spec: str, base: Path) -> str:
    """A relative path in a config is read from the config file's folder; packaged names are kept."""
    if Path(spec).is_absolute() or not (base / spec).exists():
        return spec
    return str((base / spec).resolve())


def parse_config(data: dict, *, base: Path = Path("."), source: str = "config") -> BatchConfig:
    """A :class:`BatchConfig` from the TOML data of a config file in folder ``base`` (named ``source``)."""
    top = f"{source}: "
    _check_keys(data, CONFIG_KEYS, top)
    if not data.get("models"):
        raise BatchConfigError(f"{top}models: list at least one model ([[models]] with spec = ...)")
    budget = _choice(data.get("budget", "quick"), list(BUDGETS), f"{top}budget")
    dtype = _choice(data.get("dtype", "float32"), DTYPES, f"{top}dtype")
    try:
        studies = check_studies(data.get("studies", STUDIES))
    except RhojaxError as e:
        raise BatchConfigError(f"{top}studies: {e}") from None
    if not studies:
        raise BatchConfigError(f"{top}studies: list at least one of {', '.join(STUDIES)}")
    devices, model_parallel = data.get("devices", 0), data.get("model_parallel", 1)
    if devices < 0 or model_parallel < 1:
        raise BatchConfigError(f"{top}devices, model_parallel: devices >= 0 (0: all) and model_parallel >= 1")
    models, names = [], set()
    for i, entry in enumerate(data["models"]):
        where = f"{top}models[{i}]."
        if not isinstance(entry, dict):
            raise BatchConfigError(f"{where[:-1]}: expected a table with spec = ..., got {entry!r}")
        _check_keys(entry, MODEL_KEYS, where)
        if "spec" not in entry:
            raise BatchConfigError(f"{where}spec: missing (a packaged name, a Hugging Face folder or a .gguf file)")
        name = entry.get("name", _folder_name(entry["spec"]))
        if name in names or "/" in name or name in (".", ".."):
            raise BatchConfigError(f"{where}name: {name!r} is used twice or is not a folder name; set name = ...")
        names.add(name)
        model_budget = _choice(entry.get("budget", budget), list(BUDGETS), f"{where}budget")
        settings = BUDGETS[model_budget]
        text = entry.get("text", data.get("text"))
        if text is not None:
            settings = settings.with_text(text)
        settings = apply_overrides(settings, data.get("settings", {}), f"{top}settings.")
        settings = apply_overrides(settings, entry.get("settings", {}), f"{where}settings.")
        models.append(BatchModel(_spec(entry["spec"], base), name, model_budget,
                                 _choice(entry.get("dtype", dtype), DTYPES, f"{where}dtype"), settings))
    out = Path(data.get("out", "results"))
    return BatchConfig(out if out.is_absolute() else base / out, studies, devices, model_parallel, tuple(models))


def read_config(path: str | Path) -> BatchConfig:
    """Read and check a batch config file (errors name the file and the key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BatchConfigError(f"{path}: cannot read the config ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise BatchConfigError(f"{path}: not valid TOML ({e})") from None
    return parse_config(data, base=path.resolve().parent, source=str(path))


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def comparison_row(name: str, report: dict) -> dict:
    """The headline numbers of one model's report (``None`` where a study was not run)."""
    row: dict[str, Any] = {"model": name, "spec": report["model"]["model"], "budget": report["budget"],
                           "parameters": report["model"]["parameters"], "layers": report["model"]["layers"]}
    if "perplexity" in report:
        row |= {"perplexity": report["perplexity"]["perplexity"], "perplexity_ci": report["perplexity"]["ci"]}
    if "profile" in report:
        p = report["profile"]
        rho = np.asarray(p["rho"], np.float64)
        row |= {"rho_mean": float(rho.mean()), "rho_max": float(rho.max()), "rho_max_layer": int(rho.argmax()),
                "drift_spearman": p["drift"]["aggregate"].get("spearman"),
                "amplifying_layers": report["answer"].get("amplifying_layers", {}).get("both")}
    if "sensitivity" in report:
        label, m = next(iter(report["sensitivity"]["maps"].items()))
        row |= {"sensitivity_map": label, "spread": m["spread"], "cfi": m["cfi"],
                "hierarchy": [h["kind"] for h in m["hierarchy"]]}
        matrices = report["answer"].get("matrices")
        if matrices is not None:
            row |= {"safe_matrices": matrices["safe"], "unsafe_matrices": matrices["unsafe"]}
    if "eval" in report:
        row["mean_accuracy"] = _mean(t.get("acc") for t in report["eval"]["tasks"].values())
    row["seconds"] = report["timings"]["total_seconds"]
    return row


#: Columns of the markdown table: (header, row key, format).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "s"), ("layers", "layers", "d"), ("parameters", "parameters", ",d"),
    ("perplexity", "perplexity", ".4g"), ("mean rho", "rho_mean", ".4g"), ("max rho (layer)", "rho_max", ".4g"),
    ("drift Spearman", "drift_spearman", ".3f"), ("amplifying layers", "amplifying_layers", "list"),
    ("sensitivity spread", "spread", ".3g"), ("CFI", "cfi", ".4g"), ("kinds, most sensitive first", "hierarchy",
                                                                      "list"),
    ("safe / unsafe matrices", "safe_matrices", "pair"), ("mean accuracy", "mean_accuracy", ".3f"),
    ("seconds (this run)", "seconds", ".0f"),
)


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "n/a"
    if fmt == "list":
        return ", ".join(str(v) for v in value) or "none"
    if fmt == "pair":
        return f"{value} / {row['unsafe_matrices']}"
    text = format(value, fmt)
    if key == "perplexity" and row.get("perplexity_ci"):
        lo, hi = row["perplexity_ci"]
        text += f" [{lo:.4g}, {hi:.4g}]"
    if key == "rho_max":
        text += f" ({row['rho_max_layer']})"
    return text


def comparison_markdown(rows: list[dict], failed: dict[str, str]) -> str:
    """The comparison table across models (columns without any value are left out), then failures."""
    columns = [c for c in COLUMNS if any(r.get(c[1]) is not None for r in rows)]
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(r, key, fmt) for _, key, fmt in columns) + " |" for r in rows]
    if failed:
        lines += ["", "Failed:", *[f"- {name}: {message}" for name, message in failed.items()]]
    return "\n".join(lines) + "\n"


def run_batch(config: BatchConfig, *, progress: Progress = SILENT,
              on_model: Callable[[int, int, BatchModel], None] | None = None,
              on_step: Callable[[int, int, str], None] | None = None) -> dict:
    """Run every model of ``config`` (resuming finished work) and write the comparison; return it.

    A model that fails with a :class:`~rhojax.errors.RhojaxError` (a missing file, a NaN) is listed under
    ``failed`` with its one-line message and the others still run.
    """
    mesh = device_mesh(config.devices, config.model_parallel)
    rows, failed, code = [], {}, provenance()  # the code the batch started with
    for i, entry in enumerate(config.models, 1):
        if on_model is not None:
            on_model(i, len(config.models), entry)
        try:
            started = time.perf_counter()
            model = shard_model(load_model(entry.spec, dtype=entry.dtype), mesh)
            report = run_analysis(model, config.out / entry.name, entry.settings, budget=entry.budget,
                                  progress=progress, on_step=on_step, studies=config.studies, mesh=mesh,
                                  load_seconds=time.perf_counter() - started)
        except RhojaxError as e:
            failed[entry.name] = str(e)
            continue
        rows.append(comparison_row(entry.name, report))
    comparison = {"studies": list(config.studies), "devices": 1 if mesh is None else int(mesh.size),
                  "models": rows, "failed": failed, "provenance": code}
    write_json(config.out / "comparison.json", comparison)
    markdown = config.out / "comparison.md"
    partial = markdown.with_name(f".{markdown.name}.tmp")
    partial.write_text(comparison_markdown(rows, failed), encoding="utf-8")
    os.replace(partial, markdown)  # atomic, like every JSON file of a run
    return comparison
