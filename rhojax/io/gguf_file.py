"""Load a GGUF file (llama, qwen2, qwen3, gemma3 architectures) and dequantise it to float32 rhojax params.

llama.cpp stores the Q and K projections of the ``llama`` architecture with the rows of each
head permuted for interleaved RoPE; they are un-permuted here into the half-split (Hugging Face)
convention the model code uses. GGUF tensor data arrive as ``(out, in)`` NumPy arrays and are
transposed to ``(in, out)``. Quantized tensors are dequantised by the ``gguf`` package.

What the file says about RoPE is applied, never dropped: llama.cpp encodes LLaMA-3 scaling as a
``rope_freqs`` tensor of per-frequency divisors and linear scaling as ``rope.scaling.type = linear``
with ``rope.scaling.factor``; both become ``ModelConfig.rope_freq_factors``. Other scaling types
(yarn, longrope) and partial rotary dimensions are refused. Every tensor of the file must be used:
a bias or norm that rhojax would not read (e.g. an unexpected ``attn_output.bias``) is an error.

Gemma-3 files keep llama.cpp's conventions: norm weights already hold ``1 + w``; the layer pattern
(every 6th layer global), the local RoPE base (10,000) and the attention scale are fixed by
llama.cpp rather than stored, unless the file has ``attention.sliding_window_pattern``.
"""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import jax.numpy as jnp
import numpy as np

from rhojax.errors import LoadError
from rhojax.models.config import ModelConfig
from rhojax.models.params import LAYER_DATA, assemble_params, block_spec, top_spec

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3", "gemma3")

_BLOCK_NAMES = {
    "attn_norm/scale": "attn_norm",
    "mlp_norm/scale": "ffn_norm",
    "post_attn_norm/scale": "post_attention_norm",
    "post_mlp_norm/scale": "post_ffw_norm",
    "q_norm/scale": "attn_q_norm",
    "k_norm/scale": "attn_k_norm",
    "q/w": "attn_q",
    "k/w": "attn_k",
    "v/w": "attn_v",
    "o/w": "attn_output",
    "q/b": "attn_q",
    "k/b": "attn_k",
    "v/b": "attn_v",
    "o/b": "attn_output",
    "gate/w": "ffn_gate",
    "up/w": "ffn_up",
    "down/w": "ffn_down",
}
_TOP_NAMES = {"embed": "token_embd.weight", "final_norm/scale": "output_norm.weight", "lm_head/w": "output.weight"}
#: Tensors read into the config rather than the params.
_CONFIG_TENSORS = ("rope_freqs.weight",)
#: llama.cpp's fixed Gemma-3 settings (src/llama-model.cpp): every 6th layer is global, local RoPE base 10k.
GEMMA3_PATTERN = 6
GEMMA3_LOCAL_THETA = 10_000.0


def unpermute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Invert llama.cpp's ``permute``: rows of each head go from interleaved pairs to two halves.

    ``w`` is ``(out, ...)`` with ``out = n_heads * head_dim``.
    """
    head_dim = w.shape[0] // n_heads
    return w.reshape(n_heads, head_dim // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_MISSING = object()


def _field(reader: gguf.GGUFReader, key: str, path: Path, default=_MISSING):
    field = reader.fields.get(key)
    if field is None:
        if default is _MISSING:
            raise LoadError(f"{path}: GGUF metadata key {key!r} is missing")
        return default
    try:
        return field.contents()
    except Exception as e:  # a damaged field decodes to the wrong type or length
        raise LoadError(f"{path}: GGUF metadata key {key!r} cannot be read ({type(e).__name__}: {e})") from e


def dequantize(tensor, path: Path) -> np.ndarray:
    """Float32 values of a GGUF tensor (any type the ``gguf`` package decodes), shape ``(out, in)``."""
    try:
        arr = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    except Exception as e:
        raise LoadError(f"{path}: cannot dequantise tensor {tensor.name} ({tensor.tensor_type.name}): {e}") from e
    return np.asarray(arr, dtype=np.float32)


def _rope_fields(reader: gguf.GGUFReader, arch: str, head_dim: int, tensors: dict, path: Path) -> dict:
    """``rope_theta`` and ``rope_freq_factors`` from the metadata and an optional ``rope_freqs`` tensor."""
    rot = _field(reader, f"{arch}.rope.dimension_count", path, head_dim)
    if int(rot) != head_dim:
        raise LoadError(f"{path}: partial rotary embeddings (rope.dimension_count={rot}, head_dim={head_dim}) "
                        "are not supported")
    factors = np.ones(head_dim // 2, dtype=np.float64)
    kind = _field(reader, f"{arch}.rope.scaling.type", path, "none")
    if kind == "linear":
        factors *= float(_field(reader, f"{arch}.rope.scaling.factor", path))
    elif kind != "none":
        raise LoadError(f"{path}: RoPE scaling type {kind!r} is not supported (supported: none, linear, "
                        "llama3 as a rope_freqs tensor)")
    if "rope_freqs.weight" in tensors:
        freqs = dequantize(tensors["rope_freqs.weight"], path).reshape(-1)
        if freqs.shape != factors.shape or not np.all(np.isfinite(freqs)) or np.any(freqs <= 0):
            raise LoadError(f"{path}: tensor rope_freqs.weight must hold {factors.size} positive factors")
        factors *= freqs
    fields = {"rope_theta": float(_field(reader, f"{arch}.rope.freq_base", path, 10000.0))}
    if np.any(factors != 1.0):
        fields["rope_freq_factors"] = tuple(float(f) for f in factors)
    return fields


def _gemma3_fields(reader: gguf.GGUFReader, hidden: int, heads: int, head_dim: int, layers: int, path: Path):
    """The gemma3 config fields and the per-layer sliding flags, as llama.cpp reads a Gemma-3 GGUF."""
    for key in ("gemma3.attn_logit_softcapping", "gemma3.final_logit_softcapping"):
        if _field(reader, key, path, 0):
            raise LoadError(f"{path}: {key} is not supported (rhojax implements Gemma-3 without soft-capping)")
    pattern = _field(reader, "gemma3.attention.sliding_window_pattern", path, GEMMA3_PATTERN)
    if isinstance(pattern, list):
        sliding = [bool(x) for x in pattern]
        if len(sliding) != layers:
            raise LoadError(f"{path}: gemma3.attention.sliding_window_pattern lists {len(sliding)} layers, "
                            f"the model has {layers}")
    else:
        sliding = [(i + 1) % int(pattern) != 0 for i in range(layers)]
    fields = {
        "family": "gemma3",
        "sliding_window": int(_field(reader, "gemma3.attention.sliding_window", path)),
        "rope_local_theta": GEMMA3_LOCAL_THETA,
        # llama.cpp scales queries by 1/sqrt(head_dim), except Gemma-3 27B (62 layers): 1/sqrt(hidden/heads).
        "query_pre_attn_scalar": float(hidden // heads if layers == 62 else head_dim),
        "sliding_window_pattern": None if isinstance(pattern, list) else int(pattern),
        "qk_norm": True,
    }
    return fields, sliding


def _check_sizes_against_tensors(config: ModelConfig, tensors: dict, path: Path) -> None:
    """The metadata sizes must match the tensors themselves (so nothing is ever sized by a damaged key)."""
    expected = {
        "token_embd.weight": (config.hidden_size, config.vocab_size),
        "blk.0.attn_q.weight": (config.hidden_size, config.q_size),
        "blk.0.attn_k.weight": (config.hidden_size, config.kv_size),
        "blk.0.ffn_up.weight": (config.hidden_size, config.intermediate_size),
    }
    for name, shape in expected.items():
        if name not in tensors:
            raise LoadError(f"{path}: missing tensor {name}")
        actual = tuple(int(n) for n in tensors[name].shape)
        if actual != shape:
            raise LoadError(f"{path}: tensor {name} has GGUF shape {actual}, but the metadata implies {shape}")
    last = f"blk.{config.num_layers - 1}.attn_norm.weight"
    if last not in tensors:
        raise LoadError(f"{path}: block_count is {config.num_layers} but tensor {last} is missing")


def _read_config(reader: gguf.GGUFReader, tensors: dict, path: Path) -> tuple[ModelConfig, list[bool] | None]:
    """``(config, sliding flags or None)`` from a GGUF's metadata and tensor list."""
    arch = _field(reader, "general.architecture", path)
    if arch not in SUPPORTED_ARCHS:
        raise LoadError(f"{path}: unknown architecture {arch!r} in GGUF; supported: {', '.join(SUPPORTED_ARCHS)}")
    if "token_embd.weight" not in tensors:
        raise LoadError(f"{path}: missing tensor token_embd.weight")
    embed = tensors["token_embd.weight"]
    if len(embed.shape) != 2:
        raise LoadError(f"{path}: tensor token_embd.weight has shape {tuple(embed.shape)}, expected 2 dimensions")
    try:
        hidden = int(_field(reader, f"{arch}.embedding_length", path))
        heads = int(_field(reader, f"{arch}.attention.head_count", path))
        head_dim = int(_field(reader, f"{arch}.attention.key_length", path, hidden // max(heads, 1)))
        layers = int(_field(reader, f"{arch}.block_count", path))
        fields = dict(
            family="llama",
            vocab_size=int(embed.shape[1]),
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv", path, heads)),
            head_dim=head_dim,
            intermediate_size=int(_field(reader, f"{arch}.feed_forward_length", path)),
            norm_eps=float(_field(reader, f"{arch}.attention.layer_norm_rms_epsilon", path)),
            max_position_embeddings=int(_field(reader, f"{arch}.context_length", path, 2048)),
            tie_embeddings="output.weight" not in tensors,
            qkv_bias="blk.0.attn_q.bias" in tensors,
            o_bias="blk.0.attn_output.bias" in tensors,
            qk_norm=arch == "qwen3",
            name=path.stem,
        )
        config = ModelConfig(**fields)  # validates the sizes before anything is sized by them
        _check_sizes_against_tensors(config, tensors, path)
        fields |= _rope_fields(reader, arch, head_dim, tensors, path)
        sliding = None
        if arch == "gemma3":
            gemma, sliding = _gemma3_fields(reader, hidden, heads, head_dim, layers, path)
            fields |= gemma
        return ModelConfig(**fields), sliding
    except (TypeError, ValueError, ZeroDivisionError) as e:
        if isinstance(e, LoadError):
            raise
        raise LoadError(f"{path}: inconsistent GGUF metadata ({e})") from e


def config_from_gguf(reader: gguf.GGUFReader, path: Path) -> ModelConfig:
    """The :class:`ModelConfig` a GGUF file describes."""
    return _read_config(reader, {t.name: t for t in reader.tensors}, path)[0]


def open_gguf(path: str | Path) -> gguf.GGUFReader:
    """A ``GGUFReader`` over ``path``, or a :class:`LoadError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such GGUF file")
    try:
        return gguf.GGUFReader(path)
    except Exception as e:  # the reader raises ValueError, struct.error, IndexError... on damaged files
        raise LoadError(
            f"{path}: not a readable GGUF file, it may be truncated or corrupted ({type(e).__name__}: {e})"
        ) from e


def aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array whose data start on a 64-byte boundary (so JAX can adopt it without a
    copy, see :func:`rhojax.models.params.as_jax`)."""
    size = int(np.prod(shape)) * 4
    buffer = np.empty(size + 64, np.uint8)
    start = (-buffer.ctypes.data) % 64
    return buffer[start : start + size].view(np.float32).reshape(shape)


def _pread(path: Path, name: str, out: np.ndarray, offset: int) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            got = os.preadv(f.fileno(), [memoryview(out).cast("B")], offset)
    except OSError as e:
        raise LoadError(f"{path}: cannot read tensor {name} ({e})") from e
    if got != out.nbytes:
        raise LoadError(f"{path}: file is truncated: tensor {name} ends past the end of the file")
    return out


#: Rows of a tensor dequantised at a time when streaming (bounds the dequantiser's temporaries).
CHUNK_ROWS = 4096


def read_dequantized(tensor, path: Path, *, transpose: bool) -> np.ndarray:
    """Float32 values of a GGUF tensor, ``(out, in)`` or with ``transpose`` ``(in, out)``, read from the file
    with ``pread`` (not through the reader's memory map, whose pages would stay resident) and dequantised
    :data:`CHUNK_ROWS` rows at a time into one 64-byte-aligned array: the peak is the result plus a chunk."""
    stored = tensor.data  # a memory-mapped view: only its shape and dtype are used here
    if stored.ndim != 2:
        raw = _pread(path, tensor.name, np.empty(stored.shape, stored.dtype), int(tensor.data_offset))
        arr = dequantize(tensor._replace(data=raw), path)
        return arr.T if transpose else arr
    rows = stored.shape[0]
    row_bytes = stored.shape[1] * stored.dtype.itemsize
    out = None
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(rows, start + CHUNK_ROWS)
        raw = _pread(path, tensor.name, np.empty((stop - start, stored.shape[1]), stored.dtype),
                     int(tensor.data_offset) + start * row_bytes)
        part = dequantize(tensor._replace(data=raw), path)
        if out is None:
            out = aligned_empty((part.shape[1], rows) if transpose else (rows, part.shape[1]))
        if transpose:
            out[:, start:stop] = part.T
        else:
            out[start:stop] = part
    return out


def gguf_source(path: str | Path, *, lazy: bool = False):
    """``(config, fetch)`` of a GGUF file, dequantising nothing yet.

    ``fetch(path, layer)`` dequantises one tensor to float32 in rhojax orientation when it is called
    (with ``lazy``, chunk by chunk from ``pread`` copies of its bytes: see :func:`read_dequantized`). Before
    returning,
    the file's tensor names are checked against the model's layout: a tensor rhojax would not read is
    refused (never silently dropped).
    """
    path = Path(path)
    reader = open_gguf(path)
    tensors = {t.name: t for t in reader.tensors}
    config, sliding = _read_config(reader, tensors, path)
    arch = _field(reader, "general.architecture", path)

    def tensor_name(p: str, layer: int | None) -> str:
        if layer is None:
            return _TOP_NAMES[p]
        return f"blk.{layer}.{_BLOCK_NAMES[p]}.{'bias' if p.endswith('/b') else 'weight'}"

    wanted = {tensor_name(p, None) for p in top_spec(config)}
    wanted |= {tensor_name(p, i) for p in block_spec(config) if p not in LAYER_DATA for i in range(config.num_layers)}
    unused = sorted(set(tensors) - wanted - set(_CONFIG_TENSORS))
    if unused:
        shown = ", ".join(unused[:3]) + (f" and {len(unused) - 3} more" if len(unused) > 3 else "")
        raise LoadError(f"{path}: tensors {shown} are not part of rhojax's {arch} model; refusing to drop them")

    def fetch(p: str, layer: int | None) -> np.ndarray:
        if p == "sliding":
            return np.float32(sliding[layer])
        name = tensor_name(p, layer)
        if name not in tensors:
            raise LoadError(f"{path}: missing tensor {name}")
        permuted = layer is not None and arch == "llama" and p in ("q/w", "k/w")
        if lazy:
            arr = read_dequantized(tensors[name], path, transpose=p.endswith("/w") and not permuted)
            if not permuted:
                return arr
        else:
            arr = dequantize(tensors[name], path)
        if permuted:
            arr = unpermute_rope_rows(arr, config.num_heads if p == "q/w" else config.num_kv_heads)
        return arr.T if p.endswith("/w") else arr

    return config, fetch


def load_gguf(path: str | Path, *, dtype=jnp.float32) -> tuple[ModelConfig, dict]:
    """``(config, params)`` from a GGUF file, every tensor dequantised to float32 first."""
    path = Path(path)
    config, fetch = gguf_source(path)
    return config, assemble_params(config, fetch, dtype=dtype, source=str(path))
