"""Prune every block matrix at its layer's sparsity with Wanda or SparseGPT, layer by layer.

Calibration is sequential, as in the Wanda and SparseGPT reference implementations: the inputs of
layer ``l`` are the calibration windows run through the embedding and the *already pruned* layers
``0..l-1``; layer ``l``'s projection-input statistics (``||X_j||_2`` for Wanda, ``X^T X`` for
SparseGPT) are measured there, its seven matrices pruned at ``s_l``, and its pruned output becomes
the next layer's input. One block pass per layer over the calibration windows, nothing recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.compress import INPUT_OF, NEEDS_HESSIAN, MatrixStats, compress_matrix
from rhojax.compress.calibration import layer_statistics
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.layerwise import apply_block, embed_tokens
from rhojax.models.transformer import block_params

WITHIN_LAYER_METHODS: tuple[str, ...] = ("wanda", "sparsegpt", "sparsegpt_row")


def _batched(fn, h: list[jax.Array]):
    """``fn`` over the window batches of ``h``, summing pytrees of statistics."""
    total = None
    for part in h:
        out = fn(part)
        total = out if total is None else jax.tree.map(jnp.add, total, out)
    return total


#: ``operator(layer, kind, w, stats)``: the compressed ``(in, out)`` matrix of one site, given the statistics of
#: its real (already compressed upstream) input.
SequentialOperator = Callable[[int, str, jax.Array, MatrixStats], jax.Array]


def compress_sequentially(
    config: ModelConfig,
    params: dict,
    calibration: np.ndarray,
    operator: SequentialOperator,
    *,
    hessians: bool,
    bypass: Sequence[int] = (),
    batch_size: int = 4,
    on_layer: Callable[[int], None] | None = None,
) -> dict:
    """Params with every block matrix replaced by ``operator(layer, kind, w, stats)``, calibrated sequentially.

    The inputs of layer ``l`` are the calibration windows (N, T) run through the embedding and the already
    compressed layers ``0..l-1``; ``stats`` holds ``||X_j||_2`` and, with ``hessians``, ``X^T X`` of the
    matrix's input there. Layers in ``bypass`` (to be removed afterwards) keep their params and pass their
    input on unchanged, as the model without them will.
    """
    windows = np.asarray(calibration, dtype=np.int32)
    starts = range(0, len(windows), batch_size)
    h = [embed_tokens(config, params, jnp.asarray(windows[i : i + batch_size])) for i in starts]
    layers = []
    for layer in range(config.num_layers):
        p = block_params(params, layer)
        if layer not in bypass:
            sq, hess = _batched(lambda x, p=p: layer_statistics(config, p, x, hessians), h)
            for kind in config.site_kinds:
                group = INPUT_OF[kind]
                stats = MatrixStats(jnp.sqrt(sq[group]), hess[group] if hessians else None)
                p = {**p, kind: {**p[kind], "w": operator(layer, kind, p[kind]["w"], stats)}}
            h = [apply_block(config, p, x) for x in h]
        layers.append(p)
        if on_layer is not None:
            on_layer(layer + 1)
    return {**params, "blocks": jax.tree.map(lambda *ps: jnp.stack(ps), *layers)}


def prune_with_allocation(
    config: ModelConfig,
    params: dict,
    sparsities: np.ndarray,
    method: str,
    calibration: np.ndarray,
    *,
    batch_size: int = 4,
    on_layer: Callable[[int], None] | None = None,
) -> dict:
    """Params with every matrix of layer ``l`` pruned to ``sparsities[l]`` by ``method`` (wanda or sparsegpt),
    calibrated sequentially on ``calibration`` windows (N, T) of the CALIBRATION split."""
    if method not in WITHIN_LAYER_METHODS:
        raise RhojaxError(f"method {method!r}: choose {' or '.join(WITHIN_LAYER_METHODS)}")
    sparsities = np.asarray(sparsities, dtype=np.float64)
    if sparsities.shape != (config.num_layers,):
        raise RhojaxError(f"{len(sparsities)} layer sparsities for a model with {config.num_layers} layers")
    return compress_sequentially(
        config, params, calibration,
        lambda layer, kind, w, stats: compress_matrix(method, w, float(sparsities[layer]), stats),
        hessians=method in NEEDS_HESSIAN, batch_size=batch_size, on_layer=on_layer)


def layer_sparsity(config: ModelConfig, params: dict) -> np.ndarray:
    """Realised fraction of exactly-zero weights over each layer's block matrices, shape (L,)."""
    zeros = sum(np.asarray((params["blocks"][k]["w"] == 0).sum(axis=(1, 2))) for k in config.site_kinds)
    sizes = sum(int(np.prod(config.site_shape(k))) for k in config.site_kinds)
    return zeros / sizes
