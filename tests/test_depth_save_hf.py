"""A (depth-pruned) llama-family model saved in Hugging Face format reloads in transformers with the same logits."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from rhojax.depth import remove_layers
from rhojax.errors import RhojaxError
from rhojax.io.hf import load_hf_folder
from rhojax.io.save_hf import save_hf
from rhojax.models import ModelConfig, forward, init_params

BASE = ModelConfig(
    family="llama", vocab_size=80, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=8,
    intermediate_size=48, norm_eps=1e-5, rope_theta=1e4, max_position_embeddings=64,
)


def transformers_logits(folder, toks: np.ndarray) -> np.ndarray:
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(np.array(toks), dtype=torch.long)).logits.numpy()


@pytest.mark.parametrize(
    "config",
    [BASE, BASE.replace(tie_embeddings=True), BASE.replace(qkv_bias=True), BASE.replace(qk_norm=True)],
    ids=["llama", "llama-tied", "qwen2", "qwen3"],
)
def test_pruned_model_reloads_in_transformers(tmp_path, config):
    params = init_params(config, jax.random.PRNGKey(3), scale=0.1)
    if config.qkv_bias:  # non-zero biases so a lost bias would show
        for kind in "qkv":
            b = params["blocks"][kind]["b"]
            params["blocks"][kind]["b"] = 0.1 * jax.random.normal(jax.random.PRNGKey(7), b.shape)
    pruned_config, pruned = remove_layers(config, params, [1, 2])
    save_hf(pruned_config, pruned, tmp_path)
    toks = np.asarray(jax.random.randint(jax.random.PRNGKey(1), (2, 16), 0, config.vocab_size), np.int32)
    ours = np.asarray(forward(pruned_config, pruned, toks))
    np.testing.assert_allclose(transformers_logits(tmp_path, toks), ours, rtol=1e-4, atol=1e-4)
    reloaded_config, reloaded = load_hf_folder(tmp_path)
    assert reloaded_config.replace(name="") == pruned_config.replace(name="")
    for a, b in zip(jax.tree.leaves(reloaded), jax.tree.leaves(pruned), strict=True):
        np.testing.assert_array_equal(a, b)


def test_gpt2_is_rejected(tmp_path):
    config = ModelConfig(family="gpt2", vocab_size=16, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2,
                         head_dim=4, intermediate_size=16, norm_eps=1e-5)
    with pytest.raises(RhojaxError, match="llama-family"):
        save_hf(config, init_params(config, jax.random.PRNGKey(0)), tmp_path)


@pytest.mark.slow
def test_pruned_smollm2_reloads_in_transformers(tmp_path, smollm2, smollm2_windows):
    """SmolLM2 with 26 of its 30 blocks removed, saved with its tokenizer: transformers' logits match ours."""
    config, params = remove_layers(smollm2.config, smollm2.params, range(2, 28))
    save_hf(config, params, tmp_path, tokenizer=smollm2.tokenizer)
    assert (tmp_path / "tokenizer.json").exists() or (tmp_path / "tokenizer_config.json").exists()
    toks = smollm2_windows("evaluation", 1, 24)
    ours = np.asarray(forward(config, params, toks))
    np.testing.assert_allclose(transformers_logits(tmp_path, toks), ours, rtol=1e-3, atol=2e-3)
