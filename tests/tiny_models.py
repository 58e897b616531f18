"""Tiny random llamas that read real text: SmolLM2's tokenizer (only the tokenizer is read from the
packaged GGUF, no weights are dequantised) with random weights, saved as Hugging Face folders."""

from __future__ import annotations

import functools
from pathlib import Path

import jax

from rhojax.io.resolve import resolve_path
from rhojax.io.save_hf import save_hf
from rhojax.io.tokenizer import Tokenizer, load_tokenizer
from rhojax.models import ModelConfig, init_params


@functools.cache
def smollm2_tokenizer() -> Tokenizer:
    """The packaged SmolLM2 tokenizer, read once per process."""
    path, gguf_file = resolve_path("smollm2-135m")
    return load_tokenizer(path.parent, gguf_file)


def tiny_llama_config(*, num_layers: int, hidden_size: int = 16, num_heads: int = 2, num_kv_heads: int = 1,
                      intermediate_size: int = 32, **overrides) -> ModelConfig:
    """A llama config with SmolLM2's vocabulary and head size 8."""
    return ModelConfig(family="llama", vocab_size=len(smollm2_tokenizer().backend), hidden_size=hidden_size,
                       num_layers=num_layers, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=8,
                       intermediate_size=intermediate_size, norm_eps=1e-5, rope_theta=1e4, tie_embeddings=True,
                       **overrides)


def save_tiny_llama(folder: Path, config: ModelConfig, *, seed: int = 0, params: dict | None = None) -> Path:
    """``config`` with random weights (normal, scale 0.3, from ``seed``) or ``params``, saved with SmolLM2's
    tokenizer as a Hugging Face folder at ``folder``."""
    params = init_params(config, jax.random.PRNGKey(seed), scale=0.3) if params is None else params
    save_hf(config, params, folder, tokenizer=smollm2_tokenizer())
    return Path(folder)
