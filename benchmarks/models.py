"""The model a benchmark runs: a packaged model, or random weights at a known model's shape.

``random:<shape>`` needs no asset package (speed does not depend on the weight values), so the
same table can be measured on a machine where no packaged model is installed, such as a GPU host.
"""

from __future__ import annotations

import dataclasses
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models import ModelConfig, init_params

#: Shapes for ``random:<name>`` (architecture only; weights are drawn at random).
SHAPES: dict[str, ModelConfig] = {
    "tiny": ModelConfig(family="llama", vocab_size=128, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                        head_dim=8, intermediate_size=64, norm_eps=1e-5, tie_embeddings=True, name="tiny"),
    "smollm2-135m": ModelConfig(family="llama", vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9,
                                num_kv_heads=3, head_dim=64, intermediate_size=1536, norm_eps=1e-5, rope_theta=1e5,
                                tie_embeddings=True, name="smollm2-135m"),
    "qwen2.5-coder-0.5b": ModelConfig(family="llama", vocab_size=151936, hidden_size=896, num_layers=24,
                                      num_heads=14, num_kv_heads=2, head_dim=64, intermediate_size=4864,
                                      norm_eps=1e-6, rope_theta=1e6, tie_embeddings=True, qkv_bias=True,
                                      max_position_embeddings=32768, name="qwen2.5-coder-0.5b"),
    "qwen2.5-coder-1.5b": ModelConfig(family="llama", vocab_size=151936, hidden_size=1536, num_layers=28,
                                      num_heads=12, num_kv_heads=2, head_dim=128, intermediate_size=8960,
                                      norm_eps=1e-6, rope_theta=1e6, tie_embeddings=True, qkv_bias=True,
                                      max_position_embeddings=32768, name="qwen2.5-coder-1.5b"),
    "llama-3-8b": ModelConfig(family="llama", vocab_size=128256, hidden_size=4096, num_layers=32, num_heads=32,
                              num_kv_heads=8, head_dim=128, intermediate_size=14336, norm_eps=1e-5, rope_theta=5e5,
                              max_position_embeddings=8192, name="llama-3-8b"),
}

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class BenchModel:
    """Config, params (in the benchmark's dtype), a token source and, for packaged models, the loaded model."""

    name: str
    config: ModelConfig
    params: dict
    packaged: object | None  # rhojax.io.resolve.Model, or None for random weights

    def windows(self, count: int, seq_len: int, split: str = "calibration", seed: int = 0) -> np.ndarray:
        """``count`` token windows (count, seq_len): corpus text for a packaged model, random ids after a
        BOS (id 1) for random weights."""
        if self.packaged is not None:
            from rhojax.data.windows import corpus_windows

            return corpus_windows(self.packaged.tokenizer, "wiki", split, count * seq_len, seq_len)
        rng = np.random.default_rng(seed)
        tokens = rng.integers(2, self.config.vocab_size, size=(count, seq_len)).astype(np.int32)
        tokens[:, 0] = 1
        return tokens


def load_bench_model(spec: str, dtype: str = "float32", seed: int = 0) -> BenchModel:
    """``spec`` a packaged name (or anything ``rhojax.load_model`` opens), or ``random:<shape>`` (:data:`SHAPES`)."""
    if spec.startswith("random:"):
        shape = spec.split(":", 1)[1]
        if shape not in SHAPES:
            raise SystemExit(f"--model random:{shape}: choose one of {', '.join(f'random:{s}' for s in SHAPES)}")
        config = SHAPES[shape]
        return BenchModel(spec, config, init_params(config, jax.random.key(seed), dtype=DTYPES[dtype]), None)
    from rhojax.io.resolve import load_model

    model = load_model(spec, dtype=dtype)
    return BenchModel(spec, model.config, model.params, model)


def torch_model(model: BenchModel, dtype: str, device: str):
    """The same weights as a transformers model (through a Hugging Face folder), or None where the
    family cannot be written in Hugging Face format (PyTorch baselines are then skipped)."""
    import torch
    from transformers import AutoModelForCausalLM

    from rhojax.errors import RhojaxError
    from rhojax.io.save_hf import save_hf

    folder = tempfile.mkdtemp(prefix="rhojax_bench_")
    try:
        save_hf(model.config, jax.tree.map(lambda a: np.asarray(a, np.float32), model.params), folder)
    except RhojaxError:
        return None
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    return reference.eval().to(device)
