"""Load a local Hugging Face folder (config.json + safetensors, single or sharded) into rhojax params."""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from rhojax.errors import LoadError
from rhojax.io.safetensors_file import SafetensorsCheckpoint
from rhojax.models.config import ModelConfig, RopeScaling
from rhojax.models.params import assemble_params

LLAMA_TYPES = ("llama", "mistral", "qwen2", "qwen3")
GEMMA_TYPES = ("gemma3_text",)
SUPPORTED_TYPES = (*LLAMA_TYPES, *GEMMA_TYPES, "gpt2")
#: model types whose ``attention_bias`` puts a bias on q, k, v and o (read into qkv_bias + o_bias).
_ATTENTION_BIAS_TYPES = ("llama", "qwen3", "gemma3_text")


def _rope_scaling(scaling: dict | None, head_dim: int, source: str) -> dict:
    """``rope_scaling`` / ``rope_freq_factors`` config fields for an HF scaling dict (default, linear, llama3)."""
    kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
    if kind == "default":
        return {}
    if kind == "linear":
        return {"rope_freq_factors": (float(scaling["factor"]),) * (head_dim // 2)}
    if kind == "llama3":
        return {
            "rope_scaling": RopeScaling(
                factor=float(scaling["factor"]),
                low_freq_factor=float(scaling["low_freq_factor"]),
                high_freq_factor=float(scaling["high_freq_factor"]),
                original_max_position_embeddings=int(scaling["original_max_position_embeddings"]),
            )
        }
    raise LoadError(f"{source}: RoPE scaling type {kind!r} is not supported (supported: default, linear, llama3)")


def _rope(d: dict, head_dim: int, source: str) -> dict:
    """RoPE config fields from either the v4 (``rope_theta``/``rope_scaling``) or v5 (``rope_parameters``) keys."""
    params = d.get("rope_parameters") or {}
    theta = float(d.get("rope_theta") or params.get("rope_theta") or 10000.0)
    return {"rope_theta": theta, **_rope_scaling(d.get("rope_scaling") or params, head_dim, source)}


def _gemma3_rope(d: dict, head_dim: int, source: str) -> dict:
    """Global and local RoPE fields of a Gemma-3 config (v5 per-layer-type ``rope_parameters`` or v4 keys)."""
    params = d.get("rope_parameters") or {}
    full = params.get("full_attention") or {}
    local = params.get("sliding_attention") or {}
    if _rope_scaling(local, head_dim, source):
        raise LoadError(f"{source}: RoPE scaling on sliding-window layers is not supported")
    return {
        "rope_theta": float(full.get("rope_theta") or d.get("rope_theta") or 1_000_000.0),
        "rope_local_theta": float(local.get("rope_theta") or d.get("rope_local_base_freq") or 10_000.0),
        **_rope_scaling(d.get("rope_scaling") or full, head_dim, source),
    }


def _gemma3_fields(d: dict, source: str) -> dict:
    """The gemma3-only config fields, refusing the Gemma options rhojax does not implement."""
    for key in ("attn_logit_softcapping", "final_logit_softcapping", "use_bidirectional_attention"):
        if d.get(key):
            raise LoadError(f"{source}: {key}={d[key]!r} is not supported for gemma3 (rhojax implements it without)")
    if d.get("hidden_activation", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
        raise LoadError(f"{source}: hidden_activation={d['hidden_activation']!r} is not supported for gemma3 "
                        "(rhojax implements gelu_pytorch_tanh)")
    head_dim = d.get("head_dim") or d["hidden_size"] // d["num_attention_heads"]
    return {
        "family": "gemma3",
        "query_pre_attn_scalar": float(d.get("query_pre_attn_scalar") or head_dim),
        "sliding_window": int(d.get("sliding_window") or 4096),
        "sliding_window_pattern": int(d.get("sliding_window_pattern") or 6),
        "tie_embeddings": bool(d.get("tie_word_embeddings", True)),
        "qk_norm": True,
        **_gemma3_rope(d, head_dim, source),
    }


def config_from_hf(d: dict, source: str = "config.json") -> ModelConfig:
    """Translate a Hugging Face ``config.json`` dict into a :class:`ModelConfig`."""
    model_type = d.get("model_type")
    if model_type not in SUPPORTED_TYPES:
        raise LoadError(
            f"{source}: unknown architecture model_type={model_type!r}; supported: {', '.join(SUPPORTED_TYPES)}"
        )
    try:
        if model_type == "gpt2":
            d_model, heads = d["n_embd"], d["n_head"]
            return ModelConfig(
                family="gpt2",
                vocab_size=d["vocab_size"],
                hidden_size=d_model,
                num_layers=d["n_layer"],
                num_heads=heads,
                num_kv_heads=heads,
                head_dim=d_model // heads,
                intermediate_size=d.get("n_inner") or 4 * d_model,
                norm_eps=d.get("layer_norm_epsilon", 1e-5),
                max_position_embeddings=d.get("n_positions", 1024),
                tie_embeddings=True,
                name=model_type,
            )
        attention_bias = bool(d.get("attention_bias"))
        if attention_bias and model_type not in _ATTENTION_BIAS_TYPES:
            raise LoadError(f"{source}: attention_bias=true (bias on o_proj) is not supported for {model_type}")
        if d.get("mlp_bias"):
            raise LoadError(f"{source}: mlp_bias=true is not supported for {model_type}")
        heads = d["num_attention_heads"]
        head_dim = d.get("head_dim") or d["hidden_size"] // heads
        window = d.get("sliding_window") if (model_type == "mistral" or d.get("use_sliding_window")) else None
        fields = dict(
            family="llama",
            tie_embeddings=bool(d.get("tie_word_embeddings", False)),
            qk_norm=model_type == "qwen3",
            sliding_window=window,
        )
        fields |= _gemma3_fields(d, source) if model_type in GEMMA_TYPES else _rope(d, head_dim, source)
        return ModelConfig(
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            num_layers=d["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=d.get("num_key_value_heads") or heads,
            head_dim=head_dim,
            intermediate_size=d["intermediate_size"],
            norm_eps=d.get("rms_norm_eps", 1e-6),
            max_position_embeddings=d.get("max_position_embeddings", 2048),
            qkv_bias=model_type == "qwen2" or attention_bias,
            o_bias=attention_bias,
            name=model_type,
            **fields,
        )
    except KeyError as e:
        raise LoadError(f"{source}: missing key {e.args[0]!r} for model_type={model_type!r}") from e
    except (TypeError, ValueError) as e:
        if isinstance(e, LoadError):
            raise
        raise LoadError(f"{source}: inconsistent config for model_type={model_type!r} ({e})") from e


_LLAMA_NAMES = {
    "attn_norm/scale": "input_layernorm.weight",
    "mlp_norm/scale": "post_attention_layernorm.weight",
    "q_norm/scale": "self_attn.q_norm.weight",
    "k_norm/scale": "self_attn.k_norm.weight",
    **{f"{k}/w": f"self_attn.{k}_proj.weight" for k in "qkvo"},
    **{f"{k}/b": f"self_attn.{k}_proj.bias" for k in "qkvo"},
    **{f"{k}/w": f"mlp.{k}_proj.weight" for k in ("gate", "up", "down")},
}
#: Gemma-3 norms: before and after each branch ("sandwich").
_GEMMA3_NAMES = {
    **_LLAMA_NAMES,
    "post_attn_norm/scale": "post_attention_layernorm.weight",
    "mlp_norm/scale": "pre_feedforward_layernorm.weight",
    "post_mlp_norm/scale": "post_feedforward_layernorm.weight",
}
_LLAMA_TOP = {
    "embed": "model.embed_tokens.weight",
    "final_norm/scale": "model.norm.weight",
    "lm_head/w": "lm_head.weight",
}

_GPT2_NAMES = {
    "attn_norm/scale": "ln_1.weight",
    "attn_norm/bias": "ln_1.bias",
    "mlp_norm/scale": "ln_2.weight",
    "mlp_norm/bias": "ln_2.bias",
    "o/w": "attn.c_proj.weight",
    "o/b": "attn.c_proj.bias",
    "up/w": "mlp.c_fc.weight",
    "up/b": "mlp.c_fc.bias",
    "down/w": "mlp.c_proj.weight",
    "down/b": "mlp.c_proj.bias",
}
_GPT2_TOP = {
    "embed": "wte.weight",
    "pos_embed": "wpe.weight",
    "final_norm/scale": "ln_f.weight",
    "final_norm/bias": "ln_f.bias",
}


def _llama_fetch(ckpt: SafetensorsCheckpoint):
    def fetch(path: str, layer: int | None) -> np.ndarray:
        name = _LLAMA_TOP[path] if layer is None else f"model.layers.{layer}.{_LLAMA_NAMES[path]}"
        arr = ckpt[name]
        return arr.T if path.endswith("/w") else arr  # torch Linear is (out, in)

    return fetch


def _gemma3_fetch(ckpt: SafetensorsCheckpoint, sliding: list[bool]):
    """Gemma-3 tensors: norm weights ``w`` become the effective scale ``1 + w``; ``sliding`` from the layer types."""

    def fetch(path: str, layer: int | None) -> np.ndarray:
        if path == "sliding":
            return np.float32(sliding[layer])
        name = _LLAMA_TOP[path] if layer is None else f"model.layers.{layer}.{_GEMMA3_NAMES[path]}"
        arr = ckpt[name]
        if path.endswith("scale"):
            return 1.0 + arr.astype(np.float32)
        return arr.T if path.endswith("/w") else arr

    return fetch


def gemma3_sliding_layers(raw: dict, config: ModelConfig, source: str) -> list[bool]:
    """Which layers are local, from ``layer_types`` when the config lists them, else from the pattern."""
    types = raw.get("layer_types")
    if types is None:
        return list(config.default_sliding_layers())
    unknown = set(types) - {"sliding_attention", "full_attention"}
    if len(types) != config.num_layers or unknown:
        raise LoadError(f"{source}: layer_types must list sliding_attention/full_attention for each of "
                        f"{config.num_layers} layers")
    return [t == "sliding_attention" for t in types]


def _gpt2_fetch(ckpt: SafetensorsCheckpoint, config: ModelConfig):
    prefix = "transformer." if "transformer.wte.weight" in ckpt else ""
    d = config.hidden_size

    def fetch(path: str, layer: int | None) -> np.ndarray:
        if layer is None:
            return ckpt[prefix + _GPT2_TOP[path]]
        kind, leaf = path.split("/")
        if kind in ("q", "k", "v"):  # c_attn packs q|k|v along the output axis (Conv1D is (in, out))
            fused = ckpt[f"{prefix}h.{layer}.attn.c_attn.{'weight' if leaf == 'w' else 'bias'}"]
            i = "qkv".index(kind)
            return fused[..., i * d : (i + 1) * d]
        return ckpt[f"{prefix}h.{layer}.{_GPT2_NAMES[path]}"]

    return fetch


def hf_source(folder: str | Path):
    """``(config, fetch, checkpoint)`` of a local Hugging Face folder, reading nothing but the headers yet.

    ``fetch(path, layer)`` returns one tensor in rhojax orientation, read from the memory-mapped
    safetensors files of ``checkpoint`` (a :class:`SafetensorsCheckpoint`) when it is called.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LoadError(f"{folder}: no such model folder")
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise LoadError(f"{folder}: no config.json (expected a Hugging Face model folder)")
    try:
        raw = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise LoadError(f"{cfg_path}: not valid JSON ({e})") from e
    config = config_from_hf(raw, str(cfg_path)).replace(name=folder.name)
    ckpt = SafetensorsCheckpoint(folder)
    if config.family == "gpt2":
        fetch = _gpt2_fetch(ckpt, config)
    elif config.family == "gemma3":
        fetch = _gemma3_fetch(ckpt, gemma3_sliding_layers(raw, config, str(cfg_path)))
    else:
        fetch = _llama_fetch(ckpt)
    return config, fetch, ckpt


def load_hf_folder(folder: str | Path, *, dtype=jnp.float32) -> tuple[ModelConfig, dict]:
    """``(config, params)`` from a local Hugging Face checkpoint folder."""
    config, fetch, _ = hf_source(folder)
    return config, assemble_params(config, fetch, dtype=dtype, source=str(folder))
