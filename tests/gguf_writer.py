"""Write small transformers models as GGUF files with the ``gguf`` package's writer, llama.cpp's way.

Used by the GGUF parity and fuzz tests: the tensors and metadata follow llama.cpp's converter
(``convert_hf_to_gguf.py``): llama Q/K rows permuted for interleaved RoPE, Gemma norm weights
stored as ``1 + w``, LLaMA-3 RoPE scaling as a ``rope_freqs`` tensor of per-frequency divisors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import torch

_LAYER = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_GEMMA_LAYER = {
    **_LAYER,
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}
_TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight"}


def llama_cpp_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's ``permute`` of Q/K rows for interleaved RoPE (inverse of rhojax's un-permute)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(theta: float, head_dim: int, scaling: dict) -> np.ndarray:
    """The ``rope_freqs`` tensor llama.cpp's converter writes for ``rope_type: llama3``."""
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    old = scaling["original_max_position_embeddings"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(scaling["factor"])
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / scaling["factor"] + smooth))
    return np.asarray(factors, dtype=np.float32)


def gguf_tensors(model: torch.nn.Module, arch: str) -> dict[str, np.ndarray]:
    """``{gguf name: float32 array}`` of a transformers llama/qwen2/qwen3/gemma3 model."""
    cfg = model.config
    layer_names = _GEMMA_LAYER if arch == "gemma3" else _LAYER
    out = {}
    for name, tensor in model.state_dict().items():
        arr = tensor.detach().numpy().astype(np.float32)
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        if arch == "gemma3" and name.endswith("norm.weight"):
            arr = arr + 1.0
        if name in _TOP:
            out[_TOP[name]] = arr
            continue
        _, _, layer, rest = name.split(".", 3)
        module, leaf = rest.rsplit(".", 1)
        if arch == "llama" and module in ("self_attn.q_proj", "self_attn.k_proj") and leaf == "weight":
            heads = cfg.num_attention_heads if module.endswith("q_proj") else cfg.num_key_value_heads
            arr = llama_cpp_permute(arr, heads)
        out[f"blk.{layer}.{layer_names[module]}.{leaf}"] = arr
    return out


def write_gguf(
    model: torch.nn.Module,
    arch: str,
    path: Path,
    *,
    qtype: gguf.GGMLQuantizationType = gguf.GGMLQuantizationType.F32,
    extra_tensors: dict[str, np.ndarray] | None = None,
    sliding_window_pattern: int | list[bool] | None = None,
    metadata: Callable[[gguf.GGUFWriter], None] | None = None,
) -> Path:
    """Write ``model`` as a GGUF file of architecture ``arch``; 2-D weights in ``qtype`` (norms stay F32).

    ``metadata(writer)`` may add further keys (e.g. RoPE scaling) before the file is written.
    """
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rope = cfg.rope_parameters.get("full_attention", cfg.rope_parameters)
    writer.add_rope_freq_base(rope["rope_theta"])
    if arch == "gemma3":
        writer.add_sliding_window(cfg.sliding_window)
    if sliding_window_pattern is not None:
        writer.add_sliding_window_pattern(sliding_window_pattern)
    if metadata is not None:
        metadata(writer)
    tensors = gguf_tensors(model, arch) | (extra_tensors or {})
    for name, arr in tensors.items():
        if arr.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
