"""Core functions agree with NumPy under ``chex.variants``; boundary checks fire.

Every core function runs with and without ``jax.jit``, with its inputs committed to a device
(``with_device``) and under ``jax.pmap`` over the available devices (``with_pmap``: inputs broadcast
to a leading device axis, the first device's output compared), so that none of them relies on
host-side values, Python control flow on traced data or a single-device layout."""

from __future__ import annotations

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.compress import compress_matrix
from rhojax.compress.magnitude import magnitude_prune
from rhojax.compress.quantize import rtn_quantize
from rhojax.compress.wanda import wanda_scores
from rhojax.eval.perplexity import token_nll
from rhojax.models import ModelConfig, forward, init_params
from rhojax.models.transformer import apply_rope, layer_norm
from tests.devices import host_devices_env

LLAMA = ModelConfig("llama", 29, 8, 2, 2, 1, 4, 16, 1e-6, max_position_embeddings=16)
GPT2 = ModelConfig("gpt2", 29, 8, 2, 2, 2, 4, 16, 1e-5, max_position_embeddings=16, tie_embeddings=True)


class CoreVariants(chex.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(3, 5, 8)).astype(np.float32)
        self.w = rng.normal(size=(8, 6)).astype(np.float32)
        self.scale = rng.normal(size=8).astype(np.float32)
        self.bias = rng.normal(size=8).astype(np.float32)

    @chex.variants(with_jit=True, without_jit=True, with_device=True, with_pmap=True)
    def test_rms_and_layer_norm(self):
        rms = self.variant(lambda x, s: layer_norm(LLAMA, {"scale": s}, x))(self.x, self.scale)
        expected = self.x / np.sqrt(np.mean(self.x**2, -1, keepdims=True) + LLAMA.norm_eps) * self.scale
        np.testing.assert_allclose(rms, expected, rtol=1e-5, atol=1e-6)
        ln = self.variant(lambda x, s, b: layer_norm(GPT2, {"scale": s, "bias": b}, x))(self.x, self.scale, self.bias)
        c = self.x - self.x.mean(-1, keepdims=True)
        expected = c / np.sqrt(np.mean(c**2, -1, keepdims=True) + GPT2.norm_eps) * self.scale + self.bias
        np.testing.assert_allclose(ln, expected, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True, with_device=True, with_pmap=True)
    def test_rope_rotates_each_half_pair(self):
        x = self.x.reshape(3, 5, 2, 4)[0]  # (T=5, H=2, hd=4)
        inv_freq = np.array([1.0, 0.01], np.float32)
        out = self.variant(apply_rope)(x, jnp.arange(5), inv_freq)
        angle = np.arange(5)[:, None, None] * inv_freq[None, None, :]
        x1, x2 = x[..., :2], x[..., 2:]
        cos, sin = np.cos(angle), np.sin(angle)
        expected = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True, with_device=True, with_pmap=True)
    def test_magnitude_and_rtn(self):
        pruned = np.asarray(self.variant(lambda w: magnitude_prune(w, 0.5))(self.w))
        threshold = np.sort(np.abs(self.w).ravel())[24]
        np.testing.assert_array_equal(pruned, np.where(np.abs(self.w) >= threshold, self.w, 0))
        q = np.asarray(self.variant(lambda w: rtn_quantize(w, 4))(self.w))
        step = np.abs(self.w).max(0) / 7
        np.testing.assert_allclose(q, np.clip(np.round(self.w / step), -7, 7) * step, rtol=1e-6, atol=1e-7)

    @chex.variants(with_jit=True, without_jit=True, with_device=True, with_pmap=True)
    def test_wanda_scores_and_compress_matrix(self):
        norms = np.linspace(0.5, 2.0, 8).astype(np.float32)
        scores = self.variant(wanda_scores)(self.w, norms)
        np.testing.assert_allclose(scores, np.abs(self.w) * norms[:, None], rtol=1e-6)
        out = self.variant(lambda w: compress_matrix("magnitude_row", w, 0.25))(self.w)
        assert np.all((np.asarray(out) == 0).sum(0) == 2)  # 2 of 8 inputs dropped in every output column

    @chex.variants(with_jit=True, without_jit=True, with_device=True, with_pmap=True)
    def test_forward_logits_shape_and_batch_consistency(self):
        params = init_params(LLAMA, jax.random.PRNGKey(0), scale=0.3)
        tokens = jnp.asarray(np.random.default_rng(1).integers(0, LLAMA.vocab_size, (2, 7)))
        logits = self.variant(lambda p, t: forward(LLAMA, p, t))(params, tokens)
        chex.assert_shape(logits, (2, 7, LLAMA.vocab_size))
        single = self.variant(lambda p, t: forward(LLAMA, p, t))(params, tokens[1])
        np.testing.assert_allclose(logits[1], single, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True, with_device=True, with_pmap=True)
    def test_token_nll_is_the_log_softmax_of_the_next_token(self):
        logits = np.random.default_rng(2).normal(size=(2, 6, 11)).astype(np.float32)
        tokens = np.random.default_rng(3).integers(0, 11, (2, 6)).astype(np.int32)
        nll = np.asarray(self.variant(token_nll)(logits, tokens))
        z = logits[:, :-1].astype(np.float64)
        log_p = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
        expected = -np.take_along_axis(log_p, tokens[:, 1:, None], -1)[..., 0]
        chex.assert_shape(nll, (2, 5))
        np.testing.assert_allclose(nll, expected, rtol=1e-5, atol=1e-5)


def test_pmap_variant_covers_every_device():
    """The pmap variants above run over all devices jax sees (one on a plain CPU; several on a GPU host or with
    ``--xla_force_host_platform_device_count``); each device's copy of the forward gives the same logits."""
    params = init_params(LLAMA, jax.random.PRNGKey(0), scale=0.3)
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, LLAMA.vocab_size, (2, 7)))
    n = jax.local_device_count()
    stacked = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), params)
    logits = jax.pmap(lambda p, t: forward(LLAMA, p, t), in_axes=(0, None))(stacked, tokens)
    chex.assert_shape(logits, (n, 2, 7, LLAMA.vocab_size))
    for device_logits in logits:
        np.testing.assert_array_equal(device_logits, logits[0])


@pytest.mark.skipif(os.environ.get("RHOJAX_TWO_DEVICES") == "1", reason="already the two-device run")
def test_pmap_variants_on_two_cpu_devices():
    """chex skips the pmap variants on one device: rerun them where the CPU is split into two devices."""
    env = host_devices_env(2, RHOJAX_TWO_DEVICES="1")
    result = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-rs",
                             "-k", "with_pmap or every_device"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


def test_boundary_assertions_fire():
    params = init_params(LLAMA, jax.random.PRNGKey(0))
    with pytest.raises(AssertionError):
        forward(LLAMA, params, jnp.zeros((1, 4), jnp.float32))  # float tokens
    with pytest.raises(AssertionError):
        forward(LLAMA.replace(hidden_size=16), params, jnp.zeros((1, 4), jnp.int32))  # params of another config
    with pytest.raises(AssertionError):
        compress_matrix("magnitude", jnp.ones((2, 3, 4)), 0.5)  # not a matrix
    with pytest.raises(AssertionError):
        compress_matrix("magnitude", jnp.asarray([[1.0, np.inf], [0.5, 2.0]]), 0.25)  # non-finite result
