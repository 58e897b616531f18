"""The sensitivity sweep and its yardstick on a streamed model (one block in memory at a time).

A configuration ``(t, kind, method, level)`` needs block ``t`` compressed and the dense blocks after it.
Streamed, the configurations are taken ``max_states`` at a time (in grid order); each group is one pass
of :func:`~rhojax.models.layerwise.walk_blocks` over the blocks. At layer ``s`` of the pass the states
of the group's configurations with ``t < s`` are advanced through the dense block ``s``, and those with
``t = s`` start from the clean ``h_s`` through their compressed block, so the group's states
``(C, N, T, D)`` are alive together. At the end each configuration's ``h'_L`` gives its record exactly as
:func:`~rhojax.sensitivity.sweep.run_sweep` writes it (same file, same resume rule).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.compress import CalibrationStats
from rhojax.eval.perplexity import final_state_nll_sums, perplexity_from_nll, streamed_window_nll_sums
from rhojax.models.layerwise import apply_block, walk_blocks
from rhojax.report.jsonio import append_jsonl, plain
from rhojax.sensitivity.grid import Configuration
from rhojax.sensitivity.sweep import DenseReference, compress_block, open_results, sweep_record
from rhojax.sensitivity.uniform import site_operator


def _groups(pending: Sequence[Configuration], size: int) -> list[list[Configuration]]:
    return [list(pending[i : i + size]) for i in range(0, len(pending), size)]


def _group_final_states(stream, tokens: np.ndarray, group: Sequence[Configuration],
                        calibration: CalibrationStats | None, seed: int, window_batch: int):
    """``[((c, weight_error, zero_fraction), h'_L)]`` of every configuration of ``group``: one pass over the blocks."""
    config = stream.config
    starting = defaultdict(list)
    for c in group:
        starting[c.layer].append(c)
    order: list[tuple[Configuration, float, float]] = []
    states: list[jax.Array] = []

    def visit(t: int, p: dict, h_in: jax.Array, h_out: jax.Array) -> None:
        states[:] = [apply_block(config, p, h, batch=window_batch) for h in states]
        for c in starting.get(t, []):
            pc, weight_error, zero_fraction = compress_block(p, c, calibration, seed)
            states.append(apply_block(config, pc, h_in, batch=window_batch))
            order.append((c, weight_error, zero_fraction))

    walk_blocks(stream, tokens, visit, batch=window_batch)
    return list(zip(order, states, strict=True))


def run_streamed_sweep(
    stream,
    eval_windows: np.ndarray,
    configurations: Sequence[Configuration],
    results_path: str | Path,
    *,
    calibration: CalibrationStats | None = None,
    seed: int = 0,
    window_batch: int = 4,
    max_states: int = 32,
    on_record: Callable[[int], None] | None = None,
) -> tuple[list[dict], DenseReference]:
    """:func:`~rhojax.sensitivity.sweep.run_sweep` on a :class:`~rhojax.io.stream.BlockStream`.

    Returns the records in grid order and the dense reference (its ``hidden`` holds only ``h_L``, shape
    (1, N, T, D)). ``max_states`` configurations share a pass over the blocks; their final states,
    ``max_states x N x T x D`` floats, are alive together.
    """
    results_path = Path(results_path)
    done = open_results(results_path)
    config, tokens = stream.config, np.asarray(eval_windows, np.int32)
    h_last = walk_blocks(stream, tokens, batch=window_batch)
    reference = DenseReference(tokens, h_last[None],
                               final_state_nll_sums(config, stream.top, h_last, tokens, batch_size=window_batch))
    ref_sq = np.asarray(jnp.sum(jnp.square(h_last), axis=-1), np.float64)
    count = sum(c.key in done for c in configurations)
    pending = [c for c in configurations if c.key not in done]
    for group in _groups(pending, max_states):
        finals = _group_final_states(stream, tokens, group, calibration, seed, window_batch)
        for (c, weight_error, zero_fraction), h in finals:
            nll = final_state_nll_sums(config, stream.top, h, tokens, batch_size=window_batch)
            err_sq = np.asarray(jnp.sum(jnp.square((h - h_last).astype(jnp.float32)), axis=-1), np.float64)
            record = sweep_record(c, nll, err_sq, ref_sq, reference.perplexity, weight_error, zero_fraction)
            append_jsonl(results_path, record)
            done[c.key] = json.loads(json.dumps(plain(record), sort_keys=True))
            count += 1
            if on_record is not None:
                on_record(count)
    return [done[c.key] for c in configurations], reference


def streamed_uniform_ratio(
    stream,
    windows: np.ndarray,
    method: str,
    level: float,
    *,
    calibration: CalibrationStats | None = None,
    seed: int = 0,
    batch_size: int = 4,
    dense_ppl: float | None = None,
) -> float:
    """:func:`~rhojax.sensitivity.uniform.uniform_ratio` of a streamed model: each block is compressed as it
    is loaded."""
    operator = site_operator(method, level, calibration, seed)

    def compressed(t: int, p: dict) -> dict:
        return {**p, **{kind: {**p[kind], "w": jnp.asarray(operator(p[kind]["w"], t, kind), p[kind]["w"].dtype)}
                        for kind in stream.config.site_kinds}}

    seq_len = np.shape(windows)[-1]
    if dense_ppl is None:
        dense_ppl = perplexity_from_nll(streamed_window_nll_sums(stream, windows, batch_size=batch_size),
                                        seq_len).perplexity
    nll = streamed_window_nll_sums(stream.map_blocks(compressed), windows, batch_size=batch_size)
    return perplexity_from_nll(nll, seq_len).perplexity / dense_ppl
