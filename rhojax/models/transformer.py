"""Pure-functional decoder-only transformer shared by the GPT-2 and LLaMA families.

Params are a pytree of arrays (nested dicts). Per-block params are stacked on a leading
layer axis under ``params["blocks"]`` so the stack runs as one ``lax.scan``::

    embed              (V, D)
    pos_embed          (P, D)                         gpt2 only
    blocks/attn_norm   {scale (L, D), bias (L, D)}    bias: gpt2 only
    blocks/{q,k,v}     {w (L, D, out), b (L, out)}    b: qkv_bias or gpt2
    blocks/o           {w (L, H*hd, D), b (L, D)}     b: gpt2 only
    blocks/{q,k}_norm  {scale (L, hd)}                qk_norm only
    blocks/mlp_norm    like attn_norm
    blocks/gate        {w (L, D, F)}                  llama only
    blocks/up, down    {w, b}                         b: gpt2 only
    final_norm         like attn_norm without the layer axis
    lm_head            {w (D, V)}                     untied embeddings only

Every linear weight is ``(in, out)``: ``y = x @ w + b``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from rhojax.models.config import ModelConfig

Params = dict
Array = jax.Array


def layer_norm(config: ModelConfig, p: dict, x: Array) -> Array:
    """RMSNorm ``x / rms(x) * scale`` (llama) or LayerNorm ``(x - mean) / std * scale + bias`` (gpt2).

    Statistics are computed in float32 whatever the storage dtype.
    """
    xf = x.astype(jnp.float32)
    if config.family == "gpt2":
        xf = xf - xf.mean(-1, keepdims=True)
    y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + config.norm_eps)
    y = y.astype(x.dtype) * p["scale"]
    return y + p["bias"] if "bias" in p else y


def linear(p: dict, x: Array) -> Array:
    y = x @ p["w"]
    return y + p["b"] if "b" in p else y


def rope_frequencies(config: ModelConfig) -> Array:
    """Inverse RoPE frequencies ``theta^(-2i/hd)``, with LLaMA-3 scaling when configured."""
    hd = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (jnp.arange(0, hd, 2, dtype=jnp.float32) / hd))
    s = config.rope_scaling
    if s is None:
        return inv_freq
    low_wavelen = s.original_max_position_embeddings / s.low_freq_factor
    high_wavelen = s.original_max_position_embeddings / s.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = jnp.where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq)
    smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return jnp.where(medium, smoothed, scaled)


def apply_rope(x: Array, positions: Array, inv_freq: Array) -> Array:
    """Rotate ``x`` (..., T, H, hd) by position in the half-split (HF ``rotate_half``) convention."""
    angles = positions.astype(jnp.float32)[:, None] * inv_freq[None, :]  # (T, hd/2)
    cos = jnp.cos(angles)[:, None, :]
    sin = jnp.sin(angles)[:, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


def attention(config: ModelConfig, p: dict, x: Array, positions: Array) -> Array:
    """Causal multi-head attention (MHA/GQA/MQA) on normed input ``x`` (..., T, D)."""
    *lead, t, _ = x.shape
    hd = config.head_dim
    q = linear(p["q"], x).reshape(*lead, t, config.num_heads, hd)
    k = linear(p["k"], x).reshape(*lead, t, config.num_kv_heads, hd)
    v = linear(p["v"], x).reshape(*lead, t, config.num_kv_heads, hd)
    if config.qk_norm:
        q = layer_norm(config, p["q_norm"], q)
        k = layer_norm(config, p["k_norm"], k)
    if config.family == "llama":
        inv_freq = rope_frequencies(config)
        q = apply_rope(q, positions, inv_freq)
        k = apply_rope(k, positions, inv_freq)
    batch_shape = (-1, t)
    out = jax.nn.dot_product_attention(
        q.reshape(*batch_shape, config.num_heads, hd),
        k.reshape(*batch_shape, config.num_kv_heads, hd),
        v.reshape(*batch_shape, config.num_kv_heads, hd),
        is_causal=True,
        local_window_size=None if config.sliding_window is None else (config.sliding_window - 1, 0),
    )
    return linear(p["o"], out.reshape(*lead, t, config.q_size))


def mlp(config: ModelConfig, p: dict, x: Array) -> Array:
    """``down(silu(gate x) * up x)`` (llama) or ``down(gelu_tanh(up x))`` (gpt2)."""
    if config.family == "llama":
        hidden = jax.nn.silu(linear(p["gate"], x)) * linear(p["up"], x)
    else:
        hidden = jax.nn.gelu(linear(p["up"], x), approximate=True)
    return linear(p["down"], hidden)


def block(config: ModelConfig, p: dict, h: Array, positions: Array) -> Array:
    """One pre-norm residual block ``B_t``: ``h + attn(norm h)``, then ``+ mlp(norm .)``.

    ``p`` holds one layer's params (no layer axis); ``h`` is (..., T, D); ``positions`` is (T,).
    """
    h = h + attention(config, p, layer_norm(config, p["attn_norm"], h), positions)
    return h + mlp(config, p, layer_norm(config, p["mlp_norm"], h))


def block_params(params: Params, layer: int) -> dict:
    """The params of block ``layer`` (the leading layer axis indexed away)."""
    return jax.tree.map(lambda a: a[layer], params["blocks"])


def num_layers(params: Params) -> int:
    """Number of blocks ``L`` in a params tree (the length of the stacked layer axis)."""
    return params["blocks"]["attn_norm"]["scale"].shape[0]


def embed(config: ModelConfig, params: Params, tokens: Array, positions: Array) -> Array:
    """``h_0``: token embeddings (plus learned positions for gpt2)."""
    h = params["embed"][tokens]
    if config.family == "gpt2":
        h = h + params["pos_embed"][positions]
    return h


def unembed(config: ModelConfig, params: Params, h: Array) -> Array:
    """Logits from a residual state: final norm, then the (tied or untied) output matrix."""
    x = layer_norm(config, params["final_norm"], h)
    if "lm_head" in params:
        return x @ params["lm_head"]["w"]
    return x @ params["embed"].T


def run_blocks(
    config: ModelConfig, blocks: dict, h: Array, positions: Array, *, return_hidden: bool = False
) -> Array | tuple[Array, Array]:
    """Apply a stack of blocks (leading layer axis) with ``lax.scan``.

    Returns the final state, and with ``return_hidden`` also the stacked inputs of every
    block followed by the final state, shape (L + 1, ..., T, D).
    """

    def step(carry, p):
        out = block(config, p, carry, positions)
        return out, (carry if return_hidden else None)

    final, inputs = jax.lax.scan(step, h, blocks)
    if not return_hidden:
        return final
    return final, jnp.concatenate([inputs, final[None]], axis=0)


def default_positions(tokens: Array) -> Array:
    return jnp.arange(tokens.shape[-1], dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("config", "return_hidden"))
def forward(
    config: ModelConfig, params: Params, tokens: Array, *, return_hidden: bool = False
) -> Array | tuple[Array, Array]:
    """Logits (..., T, V) for ``tokens`` (..., T); with ``return_hidden`` also ``h_0..h_L``.

    ``h_L`` is the raw output of the last block (before the final norm), unlike Hugging Face's
    ``output_hidden_states`` whose last entry is normed.
    """
    positions = default_positions(tokens)
    h = embed(config, params, tokens, positions)
    if return_hidden:
        final, hidden = run_blocks(config, params["blocks"], h, positions, return_hidden=True)
        return unembed(config, params, final), hidden
    return unembed(config, params, run_blocks(config, params["blocks"], h, positions))
