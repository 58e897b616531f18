"""Small random Hugging Face models built offline, saved as safetensors folders, for parity tests."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

SMALL = dict(vocab_size=101, hidden_size=64, num_hidden_layers=3, intermediate_size=96, max_position_embeddings=128)

#: name -> (config class, kwargs). Together they cover MHA/GQA/MQA, tied and untied embeddings,
#: q/k/v(/o) bias, q/k norm, an explicit head_dim, llama3 and linear RoPE scaling, a sliding window,
#: Conv1D, and Gemma-3's sandwich norms, GeGLU, scaled embeddings, query_pre_attn_scalar and
#: interleaved local/global layers with their own RoPE bases (windows shorter than the test sequences).
FAMILY_CASES = {
    "llama_gqa_untied": (
        transformers.LlamaConfig,
        dict(SMALL, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False),
    ),
    "llama3_mqa_tied_scaled": (
        transformers.LlamaConfig,
        dict(
            SMALL,
            num_attention_heads=4,
            num_key_value_heads=1,
            tie_word_embeddings=True,
            rope_theta=500000.0,
            rope_scaling=dict(
                rope_type="llama3",
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=16,
            ),
        ),
    ),
    "llama_linear_rope": (
        transformers.LlamaConfig,
        dict(SMALL, num_attention_heads=4, num_key_value_heads=4, rope_scaling=dict(rope_type="linear", factor=4.0)),
    ),
    "mistral_sliding": (
        transformers.MistralConfig,
        dict(SMALL, num_attention_heads=4, num_key_value_heads=2, sliding_window=5, tie_word_embeddings=False),
    ),
    "qwen2_bias_tied": (
        transformers.Qwen2Config,
        dict(SMALL, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    ),
    "qwen3_qknorm": (
        transformers.Qwen3Config,
        dict(SMALL, num_attention_heads=4, num_key_value_heads=2, head_dim=24, tie_word_embeddings=False),
    ),
    "qwen3_attention_bias": (
        transformers.Qwen3Config,
        dict(SMALL, num_attention_heads=4, num_key_value_heads=2, attention_bias=True, tie_word_embeddings=True),
    ),
    "gemma3_interleaved": (
        transformers.Gemma3TextConfig,
        dict(
            SMALL,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=24,
            query_pre_attn_scalar=40,
            sliding_window=5,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            rope_parameters={
                "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
            },
        ),
    ),
    "gemma3_mqa_linear_rope": (
        transformers.Gemma3TextConfig,
        dict(
            SMALL,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            sliding_window=7,
            layer_types=["full_attention", "sliding_attention", "sliding_attention"],
            rope_parameters={
                "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 50_000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
            },
        ),
    ),
    "gemma3_gguf_conventions": (  # what llama.cpp fixes for Gemma-3: local base 10k, scalar = head_dim
        transformers.Gemma3TextConfig,
        dict(
            SMALL,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=6,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            rope_parameters={
                "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
            },
        ),
    ),
    "gpt2_conv1d": (transformers.GPT2Config, dict(vocab_size=101, n_embd=64, n_layer=3, n_head=4, n_positions=128)),
}


def build_reference(name: str, folder: Path, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised transformers model for ``name``, saved to ``folder`` as safetensors.

    Every parameter is perturbed (norm scales and biases included) so that a loader which drops
    or transposes any tensor shows up in the logits.
    """
    config_cls, kwargs = FAMILY_CASES[name]
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config_cls(**kwargs), dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    return model
