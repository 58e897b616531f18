"""Small random Hugging Face models built offline, saved as safetensors folders, for parity tests."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

SMALL = dict(vocab_size=101, hidden_size=64, num_hidden_layers=3, intermediate_size=96, max_position_embeddings=128)

#: name -> (config class, kwargs). Together they cover MHA/GQA/MQA, tied and untied embeddings,
#: q/k/v bias, q/k norm, an explicit head_dim, llama3 RoPE scaling, a sliding window and Conv1D.
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
