"""Save a llama-family model as a Hugging Face folder: ``config.json`` + ``model.safetensors`` (+ tokenizer).

Tensor names and orientation are Hugging Face's (torch Linear weights are ``(out, in)``, so every
rhojax ``(in, out)`` weight is transposed), so ``transformers.AutoModelForCausalLM`` and
:func:`rhojax.io.hf.load_hf_folder` both load the folder directly. A depth-pruned model is saved
with ``num_hidden_layers`` equal to its surviving blocks, renumbered 0..L'-1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from rhojax.errors import RhojaxError
from rhojax.io.hf import _LLAMA_NAMES, _LLAMA_TOP
from rhojax.io.tokenizer import Tokenizer
from rhojax.models.config import ModelConfig
from rhojax.models.params import block_spec, param_at, top_spec

_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}


def hf_model_type(config: ModelConfig) -> str:
    """The Hugging Face ``model_type`` whose architecture matches ``config``."""
    if config.family != "llama":
        raise RhojaxError(f"saving to Hugging Face format supports llama-family models, not {config.family}")
    if config.rope_freq_factors is not None:
        raise RhojaxError("saving to Hugging Face format cannot express per-frequency RoPE factors (rope_freq_factors)")
    if config.o_bias and not config.qk_norm:
        return "llama"
    if config.qk_norm:
        return "qwen3"
    if config.qkv_bias:
        return "qwen2"
    return "mistral" if config.sliding_window is not None else "llama"


def hf_config(config: ModelConfig, *, bos_id: int | None = None, eos_id: int | None = None) -> dict:
    """The ``config.json`` dict of ``config`` (inverse of :func:`rhojax.io.hf.config_from_hf`)."""
    model_type = hf_model_type(config)
    d = {
        "architectures": [_ARCHITECTURES[model_type]],
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": config.norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "rope_theta": config.rope_theta,
        "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": config.o_bias,
        "mlp_bias": False,
        "torch_dtype": "float32",
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
    }
    if config.rope_scaling is not None:
        s = config.rope_scaling
        d["rope_scaling"] = {
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings,
        }
    if config.sliding_window is not None:
        d["sliding_window"] = config.sliding_window
        d["use_sliding_window"] = True
    return d


def hf_tensors(config: ModelConfig, params: dict) -> dict[str, np.ndarray]:
    """Every tensor of ``params`` under its Hugging Face name, linear weights transposed to ``(out, in)``."""
    hf_config(config)  # rejects non-llama families

    def host(a, transpose: bool) -> np.ndarray:
        arr = np.asarray(a)
        return np.ascontiguousarray(arr.T if transpose else arr)

    tensors = {_LLAMA_TOP[path]: host(param_at(params, path), path.endswith("/w")) for path in top_spec(config)}
    for path in block_spec(config):
        stacked = param_at(params, f"blocks/{path}")
        for layer in range(config.num_layers):
            tensors[f"model.layers.{layer}.{_LLAMA_NAMES[path]}"] = host(stacked[layer], path.endswith("/w"))
    return tensors


def save_hf(config: ModelConfig, params: dict, folder: str | Path, *, tokenizer: Tokenizer | None = None) -> Path:
    """Write ``folder/config.json``, ``folder/model.safetensors`` (float32; bfloat16 widens exactly) and,
    if given, the tokenizer files."""
    folder = Path(folder)
    tensors = {k: v.astype(np.float32, copy=False) for k, v in hf_tensors(config, params).items()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        bos = tokenizer.bos_id if tokenizer is not None else None
        eos = tokenizer.eos_id if tokenizer is not None else None
        cfg = hf_config(config, bos_id=bos, eos_id=eos)
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        if tokenizer is not None:
            tokenizer.backend.save_pretrained(str(folder))
    except OSError as e:
        raise RhojaxError(f"{folder}: cannot write the Hugging Face model ({e})") from e
    return folder
