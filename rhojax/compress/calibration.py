"""Input statistics of every projection, from real inputs on the calibration split.

Each weight kind reads one of four inputs of its block (the kinds sharing an input share its
statistics): ``attn_in`` = norm_attn(h_t) for q, k, v; ``o_in`` = the concatenated attention heads
for o; ``mlp_in`` = norm_mlp(h_t + attn) for gate and up (gemma3: attn post-normed first);
``down_in`` = the MLP hidden activation for down. For each input ``X`` (tokens, in) over all
calibration tokens (BOS included) we keep the squared feature norms ``sum_tokens X_i^2`` (Wanda's
``||X_i||_2^2``) and optionally the Hessian ``H = X^T X`` (SparseGPT, activation-aware SVD). One
jitted pass per window batch: a clean forward caches every ``h_t``, then a ``lax.scan`` over
layers recomputes only each block's projection inputs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.layerwise import walk_blocks
from rhojax.models.transformer import attention, default_positions, forward, layer_norm, linear, mlp, post_norm

#: The block input each weight kind multiplies.
INPUT_OF: dict[str, str] = {
    "q": "attn_in", "k": "attn_in", "v": "attn_in", "o": "o_in",
    "gate": "mlp_in", "up": "mlp_in", "down": "down_in",
}


@dataclasses.dataclass(frozen=True)
class MatrixStats:
    """Calibration statistics of one weight matrix's input: ``||X_i||_2`` (in,) and ``X^T X`` (in, in)."""

    input_norm: jax.Array | None = None
    hessian: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class CalibrationStats:
    """Per-layer input statistics: ``sq_norms[input]`` (L, in) and ``hessians[input]`` (L, in, in) or None."""

    sq_norms: dict[str, np.ndarray]
    hessians: dict[str, np.ndarray] | None
    tokens: int

    def site(self, layer: int, kind: str) -> MatrixStats:
        """The statistics of matrix ``(layer, kind)``."""
        if kind not in INPUT_OF:
            raise RhojaxError(f"unknown site kind {kind!r}")
        group = INPUT_OF[kind]
        hessian = None if self.hessians is None else jnp.asarray(self.hessians[group][layer])
        return MatrixStats(jnp.sqrt(jnp.asarray(self.sq_norms[group][layer])), hessian)


def projection_inputs(
    config: ModelConfig, p: dict, h: jax.Array, positions: jax.Array
) -> dict[str, jax.Array]:
    """The four projection inputs of block ``p`` at input ``h`` (..., T, D), keyed like :data:`INPUT_OF`.

    The pre-projection activations come from the model's own ``attention`` and ``mlp`` with the
    o / down weights replaced by identities, so they follow the model code exactly.
    """
    attn_in = layer_norm(config, p["attn_norm"], h)
    o_in = attention(config, {**p, "o": {"w": jnp.eye(config.q_size, dtype=h.dtype)}}, attn_in, positions)
    attn_out = post_norm(config, p, "post_attn_norm", linear(p["o"], o_in))
    mlp_in = layer_norm(config, p["mlp_norm"], h + attn_out)
    down_in = mlp(config, {**p, "down": {"w": jnp.eye(config.intermediate_size, dtype=h.dtype)}}, mlp_in)
    return {"attn_in": attn_in, "o_in": o_in, "mlp_in": mlp_in, "down_in": down_in}


def layer_input_statistics(config: ModelConfig, p: dict, h: jax.Array, hessians: bool) -> tuple[dict, dict]:
    """Summed ``X_i^2`` (in,) and, with ``hessians``, ``X^T X`` (in, in) of each input of block ``p`` at its
    input states ``h`` (N, T, D): the per-layer step of :func:`batch_statistics`."""
    positions = default_positions(h[0, :, 0])
    flat = {g: x.reshape(-1, x.shape[-1]).astype(jnp.float32)
            for g, x in projection_inputs(config, p, h, positions).items()}
    sq = {g: jnp.sum(x * x, axis=0) for g, x in flat.items()}
    hess = {g: x.T @ x for g, x in flat.items()} if hessians else {}
    return sq, hess


@functools.partial(jax.jit, static_argnames=("config", "hessians"))
def batch_statistics(config: ModelConfig, params: dict, tokens: jax.Array, hessians: bool):
    """Summed ``X_i^2`` (L, in) and, with ``hessians``, ``X^T X`` (L, in, in) per input, for one batch."""
    _, hidden = forward(config, params, tokens, return_hidden=True)

    def step(_, layer_inputs):
        p, h = layer_inputs
        return None, layer_input_statistics(config, p, h, hessians)

    _, (sq, hess) = jax.lax.scan(step, None, (params["blocks"], hidden[:-1]))
    return sq, hess


def _add(totals: tuple[dict, dict], parts: tuple[dict, dict]) -> None:
    """Add ``parts`` (squared norms, Hessians) into the float64 ``totals``, group by group, in place: a model's
    stacked Hessians are gigabytes (Qwen2.5-0.5B: 2.3 GB in float32), and ``total + value`` held three copies."""
    for total, part in zip(totals, parts, strict=True):
        for group, value in part.items():
            if group not in total:
                total[group] = np.array(value, dtype=np.float64)
            else:
                np.add(total[group], np.asarray(value), out=total[group])


def _as_stats(sq_total: dict, hess_total: dict, hessians: bool, tokens: int) -> CalibrationStats:
    return CalibrationStats(
        {g: v.astype(np.float32) for g, v in sq_total.items()},
        {g: v.astype(np.float32) for g, v in hess_total.items()} if hessians else None,
        tokens,
    )


def calibration_stats(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    *,
    hessians: bool = False,
    batch_size: int = 4,
    on_batch: Callable[[int], None] | None = None,
) -> CalibrationStats:
    """Input statistics of every projection over ``windows`` (N, T) of the CALIBRATION split."""
    windows = np.asarray(windows, dtype=np.int32)
    totals: tuple[dict, dict] = ({}, {})
    for start in range(0, len(windows), batch_size):
        _add(totals, batch_statistics(config, params, jnp.asarray(windows[start : start + batch_size]), hessians))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(windows)))
    return _as_stats(*totals, hessians, int(windows.size))


#: :func:`layer_input_statistics`, compiled (one block at a time).
layer_statistics = jax.jit(layer_input_statistics, static_argnames=("config", "hessians"))


def streamed_calibration_stats(
    stream,
    windows: np.ndarray,
    *,
    hessians: bool = False,
    batch_size: int = 4,
    on_layer: Callable[[int], None] | None = None,
) -> CalibrationStats:
    """:func:`calibration_stats` of a streamed model (:class:`~rhojax.io.stream.BlockStream`): one pass over its
    blocks (:func:`~rhojax.models.layerwise.walk_blocks`), each layer's statistics summed over the same
    ``batch_size``-window batches as the in-memory path."""
    windows = np.asarray(windows, dtype=np.int32)
    layers: list[tuple[dict, dict]] = []

    def visit(t: int, p: dict, h_in: jax.Array, h_out: jax.Array) -> None:
        totals: tuple[dict, dict] = ({}, {})
        for start in range(0, len(windows), batch_size):
            _add(totals, layer_statistics(stream.config, p, h_in[start : start + batch_size], hessians))
        layers.append(totals)

    walk_blocks(stream, windows, visit, batch=batch_size, on_layer=on_layer)
    stacked = tuple({g: np.stack([layer[i][g] for layer in layers]) for g in layers[0][i]} for i in range(2))
    return _as_stats(*stacked, hessians, int(windows.size))
