"""Matmul FLOP counts of rhojax's work, and the machine's measured matmul peak.

A forward over N windows of T tokens costs ``2 N T (L b + D V)`` in its weight matmuls (``b`` the
weights of one block, ``D V`` the unembedding) plus ``2 N L H hd T (T + 1)`` in causal attention
(scores and values, the useful lower triangle only). Norms, RoPE and softmax are not counted.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models import ModelConfig


def block_weights(config: ModelConfig) -> int:
    """Weight-matrix entries of one block: ``b``."""
    return sum(int(np.prod(config.site_shape(k))) for k in config.site_kinds)


def attention_flops(config: ModelConfig, windows: int, seq_len: int) -> float:
    """Causal attention FLOPs of one block over ``windows`` windows of ``seq_len`` tokens."""
    return 2.0 * windows * config.num_heads * config.head_dim * seq_len * (seq_len + 1)


def block_flops(config: ModelConfig, windows: int, seq_len: int) -> float:
    """FLOPs of one block over ``windows`` windows of ``seq_len`` tokens (matmuls and attention)."""
    return 2.0 * windows * seq_len * block_weights(config) + attention_flops(config, windows, seq_len)


def forward_flops(config: ModelConfig, windows: int, seq_len: int) -> float:
    """FLOPs of a forward with logits over ``windows`` windows of ``seq_len`` tokens."""
    unembed = 2.0 * windows * seq_len * config.hidden_size * config.vocab_size
    return config.num_layers * block_flops(config, windows, seq_len) + unembed


def sweep_flop_ceiling(config: ModelConfig, layers) -> float:
    """Ideal speed-up of prefix caching over a full forward per configuration, by matmul FLOPs per token.

    A full forward costs ``L b + u`` (``u = D V``, the unembedding); a site in layer ``t`` started from
    the cached ``h_t`` costs ``(L - t) b + u``. The ceiling is the ratio for the grid's layers.
    """
    b, u = block_weights(config), config.vocab_size * config.hidden_size
    return (config.num_layers * b + u) / float(np.mean([(config.num_layers - t) * b + u for t in layers]))


def best_time(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, best of ``repeats`` further calls); ``fn`` must block until its result is ready."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return first, best


def matmul_peak(shapes: list[tuple[int, int, int]], dtype, repeats: int) -> dict:
    """Measured GFLOP/s of jitted ``(m, k) @ (k, n)`` products (float32 accumulation for bfloat16); the peak
    is the best of them."""
    rows = []
    for m, k, n in shapes:
        a = jax.random.normal(jax.random.key(0), (m, k), dtype)
        b = jax.random.normal(jax.random.key(1), (k, n), dtype)
        product = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
        _, seconds = best_time(lambda a=a, b=b, f=product: f(a, b).block_until_ready(), repeats)
        rows.append({"m": m, "k": k, "n": n, "seconds": seconds, "gflops": 2.0 * m * k * n / seconds / 1e9})
    return {"gflops": max(r["gflops"] for r in rows), "shapes": rows}
