"""Input statistics of every projection, from real inputs on the calibration split.

Each weight kind reads one of four inputs of its block (the kinds sharing an input share its
statistics): ``attn_in`` = norm_attn(h_t) for q, k, v; ``o_in`` = the concatenated attention heads
for o; ``mlp_in`` = norm_mlp(h_t + attn) for gate and up (gemma3: attn post-normed first);
``down_in`` = the MLP hidden activation for down. For each input ``X`` (tokens, in) over all
calibration tokens (BOS included) we keep the squared feature norms ``sum_tokens X_i^2`` (Wanda's
``||X_i||_2^2``) and optionally the Hessian ``H = X^T X`` (SparseGPT, activation-aware SVD). The pass
walks the blocks once (:func:`~rhojax.models.layerwise.walk_blocks`): at layer ``t`` it holds every
window's ``h_t`` and recomputes only block ``t``'s projection inputs, so a resident model and a
streamed one take the same path and only one layer's statistics are in flight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.layerwise import ResidentBlocks, walk_blocks
from rhojax.models.transformer import attention, default_positions, layer_norm, linear, mlp, post_norm

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
    input states ``h`` (N, T, D): the per-layer step of :func:`block_statistics`."""
    positions = default_positions(h[0, :, 0])
    flat = {g: x.reshape(-1, x.shape[-1]).astype(jnp.float32)
            for g, x in projection_inputs(config, p, h, positions).items()}
    sq = {g: jnp.sum(x * x, axis=0) for g, x in flat.items()}
    hess = {g: x.T @ x for g, x in flat.items()} if hessians else {}
    return sq, hess


#: :func:`layer_input_statistics`, compiled (one block at a time).
layer_statistics = jax.jit(layer_input_statistics, static_argnames=("config", "hessians"))


def block_statistics(
    blocks,
    windows: np.ndarray,
    *,
    hessians: bool = False,
    batch_size: int = 4,
    on_layer: Callable[[int], None] | None = None,
) -> CalibrationStats:
    """The statistics of every block of ``blocks`` (anything :func:`~rhojax.models.layerwise.walk_blocks`
    walks: a :class:`~rhojax.io.stream.BlockStream` or :class:`~rhojax.models.layerwise.ResidentBlocks`) over
    ``windows`` (N, T), one layer at a time.

    Each layer's sums run over ``batch_size``-window batches in float64 and are stored in float32, so the
    memory beyond the result (Qwen2.5-0.5B's Hessians: 2.3 GB) is one layer's statistics.
    """
    windows = np.asarray(windows, dtype=np.int32)
    num = blocks.config.num_layers
    sq: dict[str, np.ndarray] = {}
    hess: dict[str, np.ndarray] = {}

    def visit(t: int, p: dict, h_in: jax.Array, h_out: jax.Array) -> None:
        totals: tuple[dict, dict] = ({}, {})
        for start in range(0, len(windows), batch_size):
            _add(totals, layer_statistics(blocks.config, p, h_in[start : start + batch_size], hessians))
        for stacked, layer in zip((sq, hess), totals, strict=True):
            for group, value in layer.items():
                if group not in stacked:
                    stacked[group] = np.empty((num, *value.shape), np.float32)
                stacked[group][t] = value

    walk_blocks(blocks, windows, visit, batch=batch_size, on_layer=on_layer)
    return CalibrationStats(sq, hess if hessians else None, int(windows.size))


def _add(totals: tuple[dict, dict], parts: tuple[dict, dict]) -> None:
    """Add ``parts`` (squared norms, Hessians) into the float64 ``totals``, group by group, in place."""
    for total, part in zip(totals, parts, strict=True):
        for group, value in part.items():
            if group not in total:
                total[group] = np.array(value, dtype=np.float64)
            else:
                np.add(total[group], np.asarray(value), out=total[group])


def calibration_stats(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    *,
    hessians: bool = False,
    batch_size: int = 4,
    on_layer: Callable[[int], None] | None = None,
) -> CalibrationStats:
    """Input statistics of every projection of the resident model ``params`` over ``windows`` (N, T) of the
    CALIBRATION split (:func:`block_statistics`); ``on_layer(layers_done)`` reports progress."""
    return block_statistics(ResidentBlocks(config, params), windows, hessians=hessians, batch_size=batch_size,
                            on_layer=on_layer)

