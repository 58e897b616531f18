"""Load a GGUF file (llama, qwen2, qwen3 architectures) and dequantise it to float32 rhojax params.

llama.cpp stores the Q and K projections of the ``llama`` architecture with the rows of each
head permuted for interleaved RoPE; they are un-permuted here into the half-split (Hugging Face)
convention the model code uses. GGUF tensor data arrive as ``(out, in)`` NumPy arrays and are
transposed to ``(in, out)``.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import jax.numpy as jnp
import numpy as np

from rhojax.errors import LoadError
from rhojax.models.config import ModelConfig
from rhojax.models.params import assemble_params

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3")

_BLOCK_NAMES = {
    "attn_norm/scale": "attn_norm",
    "mlp_norm/scale": "ffn_norm",
    "q_norm/scale": "attn_q_norm",
    "k_norm/scale": "attn_k_norm",
    "q/w": "attn_q",
    "k/w": "attn_k",
    "v/w": "attn_v",
    "o/w": "attn_output",
    "q/b": "attn_q",
    "k/b": "attn_k",
    "v/b": "attn_v",
    "gate/w": "ffn_gate",
    "up/w": "ffn_up",
    "down/w": "ffn_down",
}
_TOP_NAMES = {"embed": "token_embd.weight", "final_norm/scale": "output_norm.weight", "lm_head/w": "output.weight"}


def unpermute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Invert llama.cpp's ``permute``: rows of each head go from interleaved pairs to two halves.

    ``w`` is ``(out, ...)`` with ``out = n_heads * head_dim``.
    """
    head_dim = w.shape[0] // n_heads
    return w.reshape(n_heads, head_dim // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _field(reader: gguf.GGUFReader, key: str, path: Path, default=None):
    field = reader.fields.get(key)
    if field is None:
        if default is None:
            raise LoadError(f"{path}: GGUF metadata key {key!r} is missing")
        return default
    return field.contents()


def config_from_gguf(reader: gguf.GGUFReader, path: Path) -> ModelConfig:
    arch = _field(reader, "general.architecture", path)
    if arch not in SUPPORTED_ARCHS:
        raise LoadError(f"{path}: unknown architecture {arch!r} in GGUF; supported: {', '.join(SUPPORTED_ARCHS)}")
    names = {t.name for t in reader.tensors}
    if "token_embd.weight" not in names:
        raise LoadError(f"{path}: missing tensor token_embd.weight")
    embed = next(t for t in reader.tensors if t.name == "token_embd.weight")
    hidden = int(_field(reader, f"{arch}.embedding_length", path))
    heads = int(_field(reader, f"{arch}.attention.head_count", path))
    head_dim = int(_field(reader, f"{arch}.attention.key_length", path, hidden // heads))
    return ModelConfig(
        family="llama",
        vocab_size=int(embed.shape[1]),
        hidden_size=hidden,
        num_layers=int(_field(reader, f"{arch}.block_count", path)),
        num_heads=heads,
        num_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv", path, heads)),
        head_dim=head_dim,
        intermediate_size=int(_field(reader, f"{arch}.feed_forward_length", path)),
        norm_eps=float(_field(reader, f"{arch}.attention.layer_norm_rms_epsilon", path)),
        max_position_embeddings=int(_field(reader, f"{arch}.context_length", path, 2048)),
        rope_theta=float(_field(reader, f"{arch}.rope.freq_base", path, 10000.0)),
        tie_embeddings="output.weight" not in names,
        qkv_bias=arch == "qwen2",
        qk_norm=arch == "qwen3",
        name=path.stem,
    )


def load_gguf(path: str | Path, *, dtype=jnp.float32) -> tuple[ModelConfig, dict]:
    """``(config, params)`` from a GGUF file, every tensor dequantised to float32 first."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such GGUF file")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:  # the reader raises ValueError, struct.error, IndexError... on damaged files
        raise LoadError(
            f"{path}: not a readable GGUF file, it may be truncated or corrupted ({type(e).__name__}: {e})"
        ) from e
    config = config_from_gguf(reader, path)
    arch = _field(reader, "general.architecture", path)
    tensors = {t.name: t for t in reader.tensors}

    def read(name: str) -> np.ndarray:
        if name not in tensors:
            raise LoadError(f"{path}: missing tensor {name}")
        t = tensors[name]
        try:
            return gguf.quants.dequantize(t.data, t.tensor_type)
        except Exception as e:
            raise LoadError(f"{path}: cannot dequantise tensor {name} ({t.tensor_type.name}): {e}") from e

    def fetch(p: str, layer: int | None) -> np.ndarray:
        if layer is None:
            arr = read(_TOP_NAMES[p])
            return arr.T if p == "lm_head/w" else arr
        suffix = "bias" if p.endswith("/b") else "weight"
        arr = read(f"blk.{layer}.{_BLOCK_NAMES[p]}.{suffix}")
        if arch == "llama" and p in ("q/w", "k/w"):
            arr = unpermute_rope_rows(arr, config.num_heads if p == "q/w" else config.num_kv_heads)
        return arr.T if p.endswith("/w") else arr

    return config, assemble_params(config, fetch, dtype=dtype, source=str(path))
