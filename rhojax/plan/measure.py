"""Single-site measurements for the cost model: each (site, action) alone, on calibration windows.

For block ``t`` and a candidate action on one of its matrices (or the removal of the block), everything
else dense, from the cached clean states ``h_t`` of the calibration windows:

- ``local_error = ||B'_t(h_t) - h_{t+1}||_F / ||h_{t+1}||_F`` over every token (BOS included), where
  ``B'_t`` is the block with the matrix compressed (the identity for a removed block);
- with ``end_to_end``: the dense suffix ``t+1..L-1`` is run as well (the sensitivity sweep's engine,
  :func:`rhojax.sensitivity.sweep.suffix_outcomes`), giving ``delta_loss`` (mean NLL increase per scored
  token, nats) and the measured final ``drift = ||h'_L - h_L||_F / ||h_L||_F``.

Matrices are compressed one-shot with the dense model's input statistics (``stats``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.compress import CalibrationStats
from rhojax.eval.perplexity import final_state_nll
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block, block_params, default_positions
from rhojax.plan.actions import Action
from rhojax.sensitivity.sweep import DenseReference, suffix_outcomes

#: ``(kind, action)``: kind ``"block"`` with the action ``remove`` is the removal of the block.
Candidate = tuple[str, Action]


@functools.partial(jax.jit, static_argnames="config")
def local_squared_errors(config: ModelConfig, site_blocks: dict, h_t: jax.Array, h_next: jax.Array) -> jax.Array:
    """``||B'(h_t) - h_{t+1}||^2`` summed over tokens for C stacked variants of one block: shape (C,)."""
    positions = default_positions(h_t[0, :, 0])
    return jax.vmap(lambda p: jnp.sum(jnp.square((block(config, p, h_t, positions) - h_next).astype(jnp.float32))))(
        site_blocks)


def _stack(blocks: Sequence[dict]) -> dict:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)


def _suffix(config, params, layer, h_t, reference, start, stop):
    """NLL sums (B,) and squared final errors (B, T) of the dense suffix after block ``layer`` applied to ``h_t``."""
    tokens = jnp.asarray(reference.tokens[start:stop])
    h_last = reference.hidden[-1, start:stop]
    if layer + 1 == config.num_layers:
        nll = final_state_nll(config, params, h_t, tokens)
        return nll, jnp.sum(jnp.square(h_t - h_last), axis=-1)
    nll, err = suffix_outcomes(config, params, layer + 1, _stack([block_params(params, layer + 1)]), h_t, h_last,
                               tokens)
    return nll[0], err[0]


def measure_layer(
    config: ModelConfig,
    params: dict,
    reference: DenseReference,
    layer: int,
    candidates: Sequence[Candidate],
    stats: CalibrationStats,
    *,
    end_to_end: Sequence[bool],
    window_batch: int = 2,
    config_batch: int = 4,
) -> list[dict]:
    """One record per candidate of block ``layer``: ``local_error`` and, where ``end_to_end``, ``delta_loss``
    and ``drift`` (else None)."""
    n, t = reference.tokens.shape
    scored = n * (t - 1)
    dense_nll = float(reference.nll.sum())
    ref_last = float(jnp.sum(jnp.square(reference.hidden[-1])))
    ref_next = float(jnp.sum(jnp.square(reference.hidden[layer + 1])))
    p = block_params(params, layer)
    records = []
    batches = [(s, min(s + window_batch, n)) for s in range(0, n, window_batch)]
    for c0 in range(0, len(candidates), config_batch):
        chunk = candidates[c0 : c0 + config_batch]
        flags = end_to_end[c0 : c0 + config_batch]
        matrix = [(i, kind, a) for i, (kind, a) in enumerate(chunk) if a.op != "remove"]
        blocks = [{**p, kind: {**p[kind], "w": a.compress(p[kind]["w"], stats.site(layer, kind))}}
                  for _, kind, a in matrix]
        if blocks:  # pad to config_batch variants: one compiled shape for every chunk
            blocks += [blocks[0]] * (config_batch - len(blocks))
        rows = [i for i, _, _ in matrix]
        local = np.zeros(len(chunk))
        nll = np.zeros(len(chunk))
        err = np.zeros(len(chunk))
        for start, stop in batches:
            h_t, h_next = reference.hidden[layer, start:stop], reference.hidden[layer + 1, start:stop]
            if blocks:
                sq = np.asarray(local_squared_errors(config, _stack(blocks), h_t, h_next), np.float64)
                local[rows] += sq[: len(rows)]
                if any(flags[i] for i in rows):
                    tokens = jnp.asarray(reference.tokens[start:stop])
                    out_nll, out_err = suffix_outcomes(config, params, layer, _stack(blocks), h_t,
                                                       reference.hidden[-1, start:stop], tokens)
                    nll[rows] += np.asarray(out_nll, np.float64)[: len(rows)].sum(axis=1)
                    err[rows] += np.asarray(out_err, np.float64)[: len(rows)].sum(axis=(1, 2))
            for i, (_, a) in enumerate(chunk):
                if a.op == "remove":
                    local[i] += float(jnp.sum(jnp.square(h_t - h_next)))
                    if flags[i]:
                        out_nll, out_err = _suffix(config, params, layer, h_t, reference, start, stop)
                        nll[i] += float(jnp.sum(out_nll))
                        err[i] += float(jnp.sum(out_err))
        for i, (kind, a) in enumerate(chunk):
            measured = bool(flags[i])
            records.append({
                "layer": layer, "kind": kind, "action": a.name,
                "local_error": float(np.sqrt(local[i] / ref_next)),
                "delta_loss": (nll[i] - dense_nll) / scored if measured else None,
                "drift": float(np.sqrt(err[i] / ref_last)) if measured else None,
            })
    return records
