"""Pure-functional decoder-only transformer shared by the GPT-2, LLaMA and Gemma-3 families.

Params are a pytree of arrays (nested dicts). Per-block params are stacked on a leading
layer axis under ``params["blocks"]`` so the stack runs as one ``lax.scan``::

    embed                   (V, D)
    pos_embed               (P, D)                         gpt2 only
    blocks/attn_norm        {scale (L, D), bias (L, D)}    bias: gpt2 only
    blocks/{q,k,v}          {w (L, D, out), b (L, out)}    b: qkv_bias or gpt2
    blocks/o                {w (L, H*hd, D), b (L, D)}     b: gpt2 only
    blocks/{q,k}_norm       {scale (L, hd)}                qk_norm only
    blocks/post_attn_norm   {scale (L, D)}                 gemma3 only
    blocks/mlp_norm         like attn_norm
    blocks/gate             {w (L, D, F)}                  llama and gemma3
    blocks/up, down         {w, b}                         b: gpt2 only
    blocks/post_mlp_norm    {scale (L, D)}                 gemma3 only
    blocks/sliding          (L,)                           gemma3 only: 1.0 local, 0.0 global layer
    final_norm              like attn_norm without the layer axis
    lm_head                 {w (D, V)}                     untied embeddings only

Every linear weight is ``(in, out)``: ``y = x @ w + b``. Norm scales are the effective
multipliers (Gemma's ``1 + w`` is stored already added).
"""

from __future__ import annotations

import functools
import math

import chex
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


def rope_frequencies(config: ModelConfig, *, local: bool = False) -> Array:
    """Inverse RoPE frequencies ``theta^(-2i/hd)`` (hd/2,), scaled as configured.

    ``local`` selects gemma3's sliding-window base ``rope_local_theta``, which is never scaled.
    Otherwise the frequencies are divided by ``rope_freq_factors`` (llama.cpp's per-frequency
    factors) when present, and LLaMA-3 scaling is applied when ``rope_scaling`` is set.
    """
    hd = config.head_dim
    theta = config.rope_local_theta if local else config.rope_theta
    inv_freq = 1.0 / (theta ** (jnp.arange(0, hd, 2, dtype=jnp.float32) / hd))
    if local:
        return inv_freq
    if config.rope_freq_factors is not None:
        inv_freq = inv_freq / jnp.asarray(config.rope_freq_factors, jnp.float32)
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


def layer_frequencies(config: ModelConfig, p: dict) -> Array:
    """The RoPE frequencies of block ``p``: gemma3 picks the local or global table by ``p["sliding"]``."""
    inv_freq = rope_frequencies(config)
    if config.family == "gemma3":
        inv_freq = jnp.where(p["sliding"] > 0, rope_frequencies(config, local=True), inv_freq)
    return inv_freq


#: Query rows per block of :func:`causal_attention`: a block scores only the keys up to its last row.
ATTENTION_BLOCK = 128

#: The masked-score value: finite, so a fully masked block row never turns into NaN.
_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


def attention_mask(config: ModelConfig, p: dict, rows: Array, cols: Array) -> Array:
    """Allowed (query ``rows``, key ``cols``) pairs: causal, and within the sliding window where one applies.

    gemma3 windows only its local layers (``p["sliding"] > 0``, traced); other families window every
    layer when ``config.sliding_window`` is set. ``rows`` and ``cols`` are token indices.
    """
    i, j = rows[:, None], cols[None, :]
    allowed = j <= i
    if config.sliding_window is not None:
        inside = i - j < config.sliding_window
        allowed &= (inside | (p["sliding"] <= 0)) if config.family == "gemma3" else inside
    return allowed


def causal_attention(config: ModelConfig, p: dict, q: Array, k: Array, v: Array, *,
                     block_rows: int = ATTENTION_BLOCK) -> Array:
    """``softmax(q k^T * scale + mask) v`` for q (B, T, H, hd), k, v (B, T, Hkv, hd): (B, T, H, hd).

    Heads-major and blocked: the H = Hkv * G query heads are grouped under their shared key head
    (no repeated K/V), and the queries run in blocks of ``block_rows`` rows that score only the
    keys a causal (or sliding-window) mask can reach, which skips most of the masked triangle.
    Scores and softmax are float32; the weights are cast to ``v``'s dtype for the value product.
    """
    b, t, h, hd = q.shape
    kv = k.shape[2]
    qh = q.reshape(b, t, kv, h // kv, hd).transpose(0, 2, 3, 1, 4)  # (B, Hkv, G, T, hd)
    kh, vh = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)  # (B, Hkv, T, hd)
    reach = config.sliding_window if config.sliding_window is not None and config.family != "gemma3" else None
    index = jnp.arange(t, dtype=jnp.int32)
    blocks = []
    for start in range(0, t, block_rows):
        stop = min(start + block_rows, t)
        lo = 0 if reach is None else max(0, start - reach + 1)
        scores = jnp.einsum("bkgqd,bksd->bkgqs", qh[..., start:stop, :], kh[:, :, lo:stop],
                            preferred_element_type=jnp.float32)
        scores = scores * jnp.float32(config.attention_scale)
        scores = jnp.where(attention_mask(config, p, index[start:stop], index[lo:stop]), scores, _MASKED)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        blocks.append(jnp.einsum("bkgqs,bksd->bkgqd", weights, vh[:, :, lo:stop]))
    out = jnp.concatenate(blocks, axis=3) if len(blocks) > 1 else blocks[0]
    return out.transpose(0, 3, 1, 2, 4).reshape(b, t, h, hd)


def attention(config: ModelConfig, p: dict, x: Array, positions: Array) -> Array:
    """Causal multi-head attention (MHA/GQA/MQA) on normed input ``x`` (..., T, D).

    Scores are ``q . k * config.attention_scale`` (:func:`causal_attention`); gemma3 layers mask by their own window.
    """
    *lead, t, _ = x.shape
    hd = config.head_dim
    q = linear(p["q"], x).reshape(*lead, t, config.num_heads, hd)
    k = linear(p["k"], x).reshape(*lead, t, config.num_kv_heads, hd)
    v = linear(p["v"], x).reshape(*lead, t, config.num_kv_heads, hd)
    if config.qk_norm:
        q = layer_norm(config, p["q_norm"], q)
        k = layer_norm(config, p["k_norm"], k)
    if config.family != "gpt2":
        inv_freq = layer_frequencies(config, p)
        q = apply_rope(q, positions, inv_freq)
        k = apply_rope(k, positions, inv_freq)
    out = causal_attention(config, p, q.reshape(-1, t, config.num_heads, hd),
                           k.reshape(-1, t, config.num_kv_heads, hd), v.reshape(-1, t, config.num_kv_heads, hd))
    return linear(p["o"], out.reshape(*lead, t, config.q_size))


def mlp(config: ModelConfig, p: dict, x: Array) -> Array:
    """``down(silu(gate x) * up x)`` (llama), ``down(gelu_tanh(gate x) * up x)`` (gemma3), ``down(gelu_tanh(up x))``."""
    if config.family == "llama":
        hidden = jax.nn.silu(linear(p["gate"], x)) * linear(p["up"], x)
    elif config.family == "gemma3":
        hidden = jax.nn.gelu(linear(p["gate"], x), approximate=True) * linear(p["up"], x)
    else:
        hidden = jax.nn.gelu(linear(p["up"], x), approximate=True)
    return linear(p["down"], hidden)


def post_norm(config: ModelConfig, p: dict, name: str, y: Array) -> Array:
    """gemma3's sandwich norm ``name`` applied to a branch output ``y``; the identity for other families."""
    return layer_norm(config, p[name], y) if config.family == "gemma3" else y


#: Stage of each value :func:`block_stages` yields, in order (the ``*_residual`` values are the running state).
STAGE_KINDS = {
    "attn_norm": "norm", "attention": "attention", "post_attn_norm": "norm", "attn_residual": "attention",
    "mlp_norm": "norm", "mlp": "mlp", "post_mlp_norm": "norm", "mlp_residual": "mlp",
}


def block_stages(config: ModelConfig, p: dict, h: Array, positions: Array) -> list[tuple[str, Array]]:
    """Every intermediate value of one block, in computation order, as ``(name, value)``.

    ``a = attention(attn_norm h)``, post-normed for gemma3; ``h' = h + a``;
    ``m = mlp(mlp_norm h')``, post-normed for gemma3; the last value is ``h' + m``.
    """
    stages = [("attn_norm", layer_norm(config, p["attn_norm"], h))]
    stages.append(("attention", attention(config, p, stages[-1][1], positions)))
    if config.family == "gemma3":
        stages.append(("post_attn_norm", post_norm(config, p, "post_attn_norm", stages[-1][1])))
    h = h + stages[-1][1]
    stages += [("attn_residual", h), ("mlp_norm", layer_norm(config, p["mlp_norm"], h))]
    stages.append(("mlp", mlp(config, p, stages[-1][1])))
    if config.family == "gemma3":
        stages.append(("post_mlp_norm", post_norm(config, p, "post_mlp_norm", stages[-1][1])))
    stages.append(("mlp_residual", h + stages[-1][1]))
    return stages


def block(config: ModelConfig, p: dict, h: Array, positions: Array) -> Array:
    """One residual block ``B_t``: ``h + attn(norm h)``, then ``+ mlp(norm .)`` (gemma3: post-normed branches).

    ``p`` holds one layer's params (no layer axis); ``h`` is (..., T, D); ``positions`` is (T,).
    """
    return block_stages(config, p, h, positions)[-1][1]


def block_params(params: Params, layer: int) -> dict:
    """The params of block ``layer`` (the leading layer axis indexed away)."""
    return jax.tree.map(lambda a: a[layer], params["blocks"])


def num_layers(params: Params) -> int:
    """Number of blocks ``L`` in a params tree (the length of the stacked layer axis)."""
    return params["blocks"]["attn_norm"]["scale"].shape[0]


def embed(config: ModelConfig, params: Params, tokens: Array, positions: Array) -> Array:
    """``h_0``: token embeddings (plus learned positions for gpt2; times ``sqrt(D)`` for gemma3)."""
    h = params["embed"][tokens]
    if config.family == "gpt2":
        h = h + params["pos_embed"][positions]
    if config.family == "gemma3":
        h = h * jnp.asarray(math.sqrt(config.hidden_size), h.dtype)
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
    chex.assert_type(tokens, int)
    chex.assert_shape(params["embed"], (config.vocab_size, config.hidden_size))
    positions = default_positions(tokens)
    h = embed(config, params, tokens, positions)
    if return_hidden:
        final, hidden = run_blocks(config, params["blocks"], h, positions, return_hidden=True)
        logits = unembed(config, params, final)
        chex.assert_shape(hidden, (config.num_layers + 1, *tokens.shape, config.hidden_size))
    else:
        logits = unembed(config, params, run_blocks(config, params["blocks"], h, positions))
    chex.assert_shape(logits, (*tokens.shape, config.vocab_size))
    return (logits, hidden) if return_hidden else logits
