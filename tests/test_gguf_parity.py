"""GGUF files written with the gguf package's writer (llama.cpp's conventions) load into the same model.

Each file is written from a small random transformers model; rhojax's logits on the GGUF must match
that model's within 1e-4 (float32 tensors), so a dropped bias, norm, RoPE scaling or permutation fails.
"""

from __future__ import annotations

import dataclasses

import gguf
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from rhojax.errors import LoadError
from rhojax.io.gguf_file import load_gguf
from rhojax.models import forward
from tests.gguf_writer import llama3_rope_factors, write_gguf
from tests.hf_reference import build_reference

TOKENS = np.random.default_rng(1).integers(0, 101, size=(2, 24))


def _reference_logits(model: torch.nn.Module) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(TOKENS)).logits.numpy()


def _ours(path) -> tuple[object, dict, np.ndarray]:
    config, params = load_gguf(path)
    return config, params, np.asarray(forward(config, params, jnp.asarray(TOKENS)))


@pytest.mark.parametrize(
    "case, arch",
    [
        ("llama_gqa_untied", "llama"),
        ("qwen2_bias_tied", "qwen2"),
        ("qwen3_qknorm", "qwen3"),
        ("qwen3_attention_bias", "qwen3"),
    ],
)
def test_gguf_logits_match_transformers(case, arch, tmp_path):
    reference = build_reference(case, tmp_path)
    path = write_gguf(reference, arch, tmp_path / f"{case}.gguf")
    config, _, logits = _ours(path)
    assert config.o_bias == bool(getattr(reference.config, "attention_bias", False))
    assert np.max(np.abs(logits - _reference_logits(reference))) < 1e-4


def test_gguf_llama3_rope_scaling_is_applied(tmp_path):
    """llama.cpp writes llama3 scaling as a rope_freqs tensor; it must be read, and it matters here."""
    reference = build_reference("llama3_mqa_tied_scaled", tmp_path)
    cfg = reference.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    factors = llama3_rope_factors(cfg.rope_parameters["rope_theta"], head_dim, cfg.rope_parameters)
    path = write_gguf(reference, "llama", tmp_path / "scaled.gguf", extra_tensors={"rope_freqs.weight": factors})
    config, params, logits = _ours(path)
    expected = _reference_logits(reference)
    assert config.rope_freq_factors is not None
    assert np.max(np.abs(logits - expected)) < 1e-4
    unscaled = np.asarray(forward(dataclasses.replace(config, rope_freq_factors=None), params, jnp.asarray(TOKENS)))
    assert np.max(np.abs(unscaled - expected)) > 1e-3  # the scaling is visible at this tolerance


def test_gguf_linear_rope_scaling_metadata_is_applied(tmp_path):
    reference = build_reference("llama_linear_rope", tmp_path)

    def linear(writer):
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(4.0)

    path = write_gguf(reference, "llama", tmp_path / "linear.gguf", metadata=linear)
    config, _, logits = _ours(path)
    assert config.rope_freq_factors == (4.0,) * (config.head_dim // 2)
    assert np.max(np.abs(logits - _reference_logits(reference))) < 1e-4


@pytest.mark.parametrize("pattern", [2, [True, False, True, False]])
def test_gguf_gemma3_matches_transformers(pattern, tmp_path):
    """Norms stored as 1 + w, the layer pattern as an int or a per-layer list, llama.cpp's fixed local base."""
    reference = build_reference("gemma3_gguf_conventions", tmp_path)
    path = write_gguf(reference, "gemma3", tmp_path / "gemma.gguf", sliding_window_pattern=pattern)
    config, params, logits = _ours(path)
    assert config.family == "gemma3"
    np.testing.assert_array_equal(np.asarray(params["blocks"]["sliding"]), [1, 0, 1, 0])
    assert np.max(np.abs(logits - _reference_logits(reference))) < 1e-4


def test_gguf_quantized_qwen2_matches_transformers_gguf_loader(tmp_path):
    """A Q8_0 qwen2 file: rhojax and transformers' own GGUF loader dequantise and run it alike.

    (Not done for qwen3: transformers' GGUF loader reads neither key_length nor attention biases.)
    """
    from transformers import AutoModelForCausalLM

    reference = build_reference("qwen2_bias_tied", tmp_path)
    path = write_gguf(reference, "qwen2", tmp_path / "q8.gguf", qtype=gguf.GGMLQuantizationType.Q8_0)
    theirs = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=path.name, dtype=torch.float32).eval()
    _, _, logits = _ours(path)
    assert np.max(np.abs(logits - _reference_logits(theirs))) < 1e-4


def test_gguf_refuses_what_it_would_drop(tmp_path):
    reference = build_reference("qwen2_bias_tied", tmp_path)
    extra = write_gguf(reference, "qwen2", tmp_path / "extra.gguf",
                       extra_tensors={"blk.0.attn_output.scale": np.ones(3, np.float32)})
    with pytest.raises(LoadError, match=r"extra\.gguf: tensors blk\.0\.attn_output\.scale are not part"):
        load_gguf(extra)


def test_gguf_refuses_yarn_scaling(tmp_path):
    reference = build_reference("qwen2_bias_tied", tmp_path)
    path = write_gguf(reference, "qwen2", tmp_path / "yarn.gguf",
                      metadata=lambda w: w.add_rope_scaling_type(gguf.RopeScalingType.YARN))
    with pytest.raises(LoadError, match=r"yarn\.gguf: RoPE scaling type 'yarn' is not supported"):
        load_gguf(path)


def test_gguf_refuses_gemma_soft_capping(tmp_path):
    reference = build_reference("gemma3_gguf_conventions", tmp_path)
    path = write_gguf(reference, "gemma3", tmp_path / "capped.gguf", sliding_window_pattern=2,
                      metadata=lambda w: w.add_float32("gemma3.final_logit_softcapping", 30.0))
    with pytest.raises(LoadError, match=r"capped\.gguf: gemma3\.final_logit_softcapping is not supported"):
        load_gguf(path)
