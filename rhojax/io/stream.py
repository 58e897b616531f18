"""Models larger than memory: the embeddings, final norm and head stay resident, the blocks are read one at
a time.

:func:`open_blocks` opens a packaged name, a ``.gguf`` file or a Hugging Face folder as a
:class:`BlockStream` without reading any block. ``stream.block(t)`` then reads block ``t`` (memory-mapped
safetensors, or GGUF tensors read and dequantised on demand), checks it like a full load does, and
returns it as the params of one block (no layer axis, as ``block_params`` lays them out). Nothing is
kept: the caller drops the block when it is done with it, so the resident size is about the embeddings,
one block and the activations. :mod:`rhojax.models.layerwise` runs analyses block by block on a stream.

:func:`needs_streaming` decides from a memory budget whether a model would not fit whole.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from rhojax.errors import LoadError, RhojaxError
from rhojax.io.gguf_file import gguf_source
from rhojax.io.hf import hf_source
from rhojax.io.resolve import (
    DTYPES,
    PACKAGED_MODELS,
    Model,
    _cached_tokenizer,
    dtype_name,
    load_model,
    resolve_path,
)
from rhojax.io.tokenizer import Tokenizer
from rhojax.models.config import ModelConfig
from rhojax.models.layerwise import ResidentBlocks
from rhojax.models.params import assemble_block, assemble_top, model_bytes

#: ``load(layer)``: the params of one block.
BlockLoader = Callable[[int], dict]


@dataclasses.dataclass(frozen=True)
class BlockStream:
    """A model whose blocks are loaded on demand: ``top`` (embeddings, final norm, head) is resident.

    ``spec``, ``config``, ``dtype``, ``source`` and ``gguf_file`` mean what they mean on a
    :class:`~rhojax.io.resolve.Model`, so a stream identifies a run and has a tokenizer like a model.
    """

    spec: str
    config: ModelConfig
    top: dict
    dtype: str
    source: Path
    gguf_file: str | None
    load: BlockLoader = dataclasses.field(repr=False)

    @property
    def num_layers(self) -> int:
        """Number of blocks ``L``."""
        return self.config.num_layers

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (shared with a :class:`Model` read from the same file)."""
        return _cached_tokenizer(self.source, self.gguf_file)

    def block(self, layer: int) -> dict:
        """The params of block ``layer`` (read now; keep it only as long as it is needed)."""
        if not 0 <= layer < self.config.num_layers:
            raise RhojaxError(f"layer {layer}: {self.spec} has layers 0..{self.config.num_layers - 1}")
        return self.load(layer)

    def map_blocks(self, fn: Callable[[int, dict], dict]) -> BlockStream:
        """The same model with block ``t`` replaced by ``fn(t, block)`` as it is loaded (e.g. compressed)."""
        return dataclasses.replace(self, load=lambda t, load=self.load: fn(t, load(t)))


def stream_model(model: Model) -> BlockStream:
    """A loaded :class:`Model` seen as a stream (its blocks are sliced from the resident stack)."""
    resident = ResidentBlocks(model.config, model.params)
    return BlockStream(model.spec, model.config, resident.top, model.dtype, model.source, model.gguf_file,
                       resident.block)


def _source(spec: str):
    """``(path, gguf file, config, fetch, release)`` of ``spec``; reads headers only."""
    path, gguf_file = resolve_path(spec)
    if gguf_file is not None:
        config, fetch = gguf_source(path, lazy=True)
        release = None
    elif (path / "config.json").is_file():
        config, fetch, checkpoint = hf_source(path)
        release = checkpoint.release
    else:
        raise LoadError(f"{spec}: streaming reads a .gguf file or a Hugging Face folder (config.json + "
                        "safetensors); load a rhojax checkpoint whole with load_model")
    if spec in PACKAGED_MODELS:
        config = config.replace(name=spec)
    return path, gguf_file, config, fetch, release


def open_blocks(spec: str, *, dtype="float32") -> BlockStream:
    """Open ``spec`` (packaged name, ``.gguf`` file or Hugging Face folder) for block-by-block use.

    Only the headers, the embeddings, the final norm and the head are read now. A GGUF block's tensors
    are read from the file and dequantised when the block is asked for; a Hugging Face folder's are read
    from its memory-mapped safetensors files, whose pages are then released.
    """
    dtype = dtype_name(dtype)
    path, gguf_file, config, fetch, release = _source(spec)
    jdtype, source = DTYPES[dtype], str(path)

    def load(layer: int) -> dict:
        p = assemble_block(config, fetch, layer, dtype=jdtype, source=source)
        if release is not None:
            jax.block_until_ready(p)
            release()
        return p

    top = assemble_top(config, fetch, dtype=jdtype, source=source)
    if release is not None:
        release()
    return BlockStream(spec, config, top, dtype, path, gguf_file, load)


_UNITS = {"": 2**30, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30, "t": 2**40,
          "tb": 2**40}


def parse_memory(text: str) -> int:
    """Bytes of a size such as ``"6GB"``, ``"512M"`` or ``"1.5"`` (GiB when no unit is given)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise RhojaxError(f"memory_budget {text!r}: give a size such as 6GB, 512MB or 1.5 (GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def needs_streaming(config: ModelConfig, dtype: str, memory_budget: str) -> bool:
    """Whether the whole params of ``config`` in ``dtype`` exceed ``memory_budget`` (empty: no budget)."""
    if not memory_budget:
        return False
    return model_bytes(config, jnp.dtype(DTYPES[dtype_name(dtype)])) > parse_memory(memory_budget)


def open_model(spec: str, *, dtype="float32", stream: bool = False, memory_budget: str = "") -> Model | BlockStream:
    """A :class:`BlockStream` when ``stream`` is set or the model exceeds ``memory_budget``, else the whole
    :class:`Model` (``load_model``)."""
    if stream or (memory_budget and needs_streaming(_source(spec)[2], dtype, memory_budget)):
        return open_blocks(spec, dtype=dtype)
    return load_model(spec, dtype=dtype)


def as_stream(model: Model | BlockStream, stream: bool = False) -> BlockStream | None:
    """What a study runs block by block: ``model`` itself when it is a :class:`BlockStream`, a loaded
    :class:`Model` seen as one when ``stream`` is asked for, else None (the whole-model path)."""
    if isinstance(model, BlockStream):
        return model
    return stream_model(model) if stream else None
