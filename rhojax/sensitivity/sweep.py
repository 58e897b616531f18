"""The per-matrix sensitivity sweep: compress one site, keep everything else dense, measure.

For a configuration ``(t, kind, method, level)`` the engine starts from the cached clean state
``h_t`` of the evaluation windows, runs block ``t`` with the compressed matrix and the dense
blocks ``t+1..L-1`` (a ``fori_loop``, so one compilation serves every layer), and records

- ``ppl_ratio = ppl(compressed) / ppl(dense)`` on the evaluation windows;
- the drift of the final state ``h_L``: aggregate ``||h'_L - h_L||_F / ||h_L||_F`` over all tokens
  (BOS included), token-wise mean and median of ``||h'_L - h_L|| / ||h_L||`` over non-BOS tokens,
  and the BOS position's own ratio (docs/definitions.md#attention-sinks-aggregate-and-token-wise-statistics).

Configurations of one layer are batched with ``vmap`` (``config_batch`` at a time); with a ``mesh``
(:mod:`rhojax.sharding`) each batch is rounded up to a multiple of its data axis and its sites are
spread over the devices (a short batch is padded with copies of its first site, dropped). Records are
appended to a JSON-lines file as each batch finishes; a restarted sweep with the same settings
skips what is there and recomputes unfinished batches with the same composition, so the file
it produces is identical to an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from rhojax.compress import CalibrationStats, compress_matrix
from rhojax.eval.perplexity import final_state_nll, token_nll
from rhojax.models.config import SITE_KINDS, ModelConfig
from rhojax.models.transformer import block, block_params, default_positions, forward, unembed
from rhojax.report.jsonio import append_jsonl, plain, read_jsonl, write_jsonl
from rhojax.sensitivity.grid import Configuration
from rhojax.sharding import gather, padded_size, shard_rows


@dataclasses.dataclass(frozen=True)
class DenseReference:
    """Clean evaluation pass: tokens (N, T), every ``h_t`` (L+1, N, T, D) (streamed: only ``h_L``, (1, N, T, D)),
    window NLL sums (N,)."""

    tokens: np.ndarray
    hidden: jax.Array
    nll: np.ndarray

    @property
    def perplexity(self) -> float:
        """The dense perplexity ``exp(sum nll / (N (T - 1)))``."""
        return math.exp(float(self.nll.sum()) / (self.tokens.shape[0] * (self.tokens.shape[1] - 1)))


def dense_reference(config: ModelConfig, params: dict, windows: np.ndarray, *, batch_size: int = 4) -> DenseReference:
    """Run the clean model once over the evaluation windows and keep every residual state."""
    windows = np.asarray(windows, dtype=np.int32)
    hidden, nll = [], []
    for start in range(0, len(windows), batch_size):
        tokens = jnp.asarray(windows[start : start + batch_size])
        _, h = forward(config, params, tokens, return_hidden=True)
        hidden.append(h)
        nll.append(np.asarray(final_state_nll(config, params, h[-1], tokens), np.float64))
    return DenseReference(windows, jnp.concatenate(hidden, axis=1), np.concatenate(nll))


def _suffix_outcome(config, params, layer, site_block, h_t, h_last, tokens):
    positions = default_positions(tokens)
    h = block(config, site_block, h_t, positions)
    h = jax.lax.fori_loop(
        layer + 1, config.num_layers, lambda s, h: block(config, block_params(params, s), h, positions), h
    )
    nll = token_nll(unembed(config, params, h), tokens).sum(-1)
    return nll, jnp.sum(jnp.square((h - h_last).astype(jnp.float32)), axis=-1)


@functools.partial(jax.jit, static_argnames="config")
def suffix_outcomes(config: ModelConfig, params: dict, layer, site_blocks: dict, h_t, h_last, tokens):
    """Window NLL sums (C, B) and squared final-state errors per token (C, B, T) for C stacked
    variants of block ``layer`` (``site_blocks`` has a leading config axis), from the cached ``h_t``."""
    return jax.vmap(lambda p: _suffix_outcome(config, params, layer, p, h_t, h_last, tokens))(site_blocks)


def rotation_key(seed: int, layer: int, kind: str) -> jax.Array:
    """The PRNG key of a site (used by randomised operators): fixed by seed, layer and kind."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), layer), SITE_KINDS.index(kind))


def compressed_block(params: dict, c: Configuration, calibration: CalibrationStats | None, seed: int):
    """Block ``c.layer``'s params with matrix ``c.kind`` compressed, and (relative error, zero fraction)."""
    return compress_block(block_params(params, c.layer), c, calibration, seed)


def compress_block(p: dict, c: Configuration, calibration: CalibrationStats | None, seed: int):
    """:func:`compressed_block` from the params ``p`` of block ``c.layer`` alone (a streamed block)."""
    w = p[c.kind]["w"]
    stats = None if calibration is None else calibration.site(c.layer, c.kind)
    w_new = compress_matrix(c.method, w, c.level, stats, rotation_key(seed, c.layer, c.kind))
    weight_error = float(jnp.linalg.norm(w - w_new) / jnp.linalg.norm(w))
    return {**p, c.kind: {**p[c.kind], "w": w_new}}, weight_error, float(jnp.mean(w_new == 0))


def drift_statistics(err_sq: np.ndarray, ref_sq: np.ndarray) -> dict[str, float]:
    """Aggregate and token-wise relative drift of ``h_L`` from squared per-token norms (N, T)."""
    per_token = np.sqrt(err_sq / ref_sq)
    return {
        "drift": float(np.sqrt(err_sq.sum() / ref_sq.sum())),
        "drift_token_mean": float(per_token[:, 1:].mean()),
        "drift_token_median": float(np.median(per_token[:, 1:])),
        "drift_bos": float(np.sqrt(err_sq[:, 0].sum() / ref_sq[:, 0].sum())),
    }


def sweep_record(c: Configuration, nll: np.ndarray, err_sq: np.ndarray, ref_sq: np.ndarray, dense_ppl: float,
                 weight_error: float, zero_fraction: float) -> dict:
    """The record of configuration ``c`` from its window NLL sums (N,) and squared final-state errors (N, T)."""
    ppl = float(np.exp(nll.sum() / (err_sq.shape[0] * (err_sq.shape[1] - 1))))  # inf (written as null) if diverged
    return {
        "layer": c.layer, "kind": c.kind, "method": c.method, "level": c.level,
        "ppl": ppl, "dense_ppl": dense_ppl, "ppl_ratio": ppl / dense_ppl,
        "weight_error": weight_error, "zero_fraction": zero_fraction, "window_nll": nll,
        **drift_statistics(err_sq, ref_sq),
    }


def _chunks(configurations: Sequence[Configuration], size: int) -> list[list[Configuration]]:
    """Consecutive same-layer runs of the grid, cut every ``size`` configurations."""
    chunks: list[list[Configuration]] = []
    for c in configurations:
        if chunks and chunks[-1][0].layer == c.layer and len(chunks[-1]) < size:
            chunks[-1].append(c)
        else:
            chunks.append([c])
    return chunks


def open_results(path: Path) -> dict[tuple, dict]:
    """Finished records of an earlier run of the same sweep (the run folder has checked its settings).

    A torn last line from a killed run is dropped and the file rewritten atomically without it.
    """
    records = read_jsonl(path)
    if path.exists():
        write_jsonl(path, records)
    return {Configuration(r["layer"], r["kind"], r["method"], r["level"]).key: r for r in records}


def run_sweep(
    config: ModelConfig,
    params: dict,
    eval_windows: np.ndarray,
    configurations: Sequence[Configuration],
    results_path: str | Path,
    *,
    calibration: CalibrationStats | None = None,
    seed: int = 0,
    window_batch: int = 4,
    config_batch: int = 1,
    on_record: Callable[[int], None] | None = None,
    mesh: Mesh | None = None,
) -> tuple[list[dict], DenseReference]:
    """Sweep ``configurations`` on ``eval_windows`` (EVALUATION split), resuming from ``results_path``.

    ``calibration`` holds the input statistics (CALIBRATION split) that Wanda, SparseGPT and the
    activation-aware SVD need. The caller keeps one results file per set of settings (a
    :class:`~rhojax.runs.RunFolder`). Returns the records in grid order and the dense reference;
    ``on_record(done)`` reports progress. Each record carries ``window_nll``, the summed NLL of
    every evaluation window, so that intervals can be formed by resampling windows. ``mesh`` spreads the
    sites of a batch over devices (the batch composition, and so the float rounding, follows its size).
    """
    results_path = Path(results_path)
    done = open_results(results_path)
    reference = dense_reference(config, params, eval_windows, batch_size=window_batch)
    ref_sq = np.asarray(jnp.sum(jnp.square(reference.hidden[-1]), axis=-1), np.float64)
    dense_ppl = reference.perplexity
    count = sum(c.key in done for c in configurations)
    config_batch = padded_size(config_batch, mesh)
    for chunk in _chunks(configurations, config_batch):
        if all(c.key in done for c in chunk):
            continue
        blocks, weight_errors, zero_fractions = zip(
            *(compressed_block(params, c, calibration, seed) for c in chunk), strict=True
        )
        blocks = blocks + blocks[:1] * (padded_size(len(blocks), mesh) - len(blocks))
        site_blocks = jax.tree.map(lambda *xs: shard_rows(jnp.stack(xs), mesh), *blocks)
        layer = chunk[0].layer
        nll, err_sq = [], []
        for start in range(0, len(reference.tokens), window_batch):
            stop = start + window_batch
            outcome = suffix_outcomes(config, params, layer, site_blocks, reference.hidden[layer, start:stop],
                                      reference.hidden[-1, start:stop], jnp.asarray(reference.tokens[start:stop]))
            outcome = gather(outcome, mesh)
            nll.append(np.asarray(outcome[0], np.float64))
            err_sq.append(np.asarray(outcome[1], np.float64))
        nll_all, err_all = np.concatenate(nll, axis=1), np.concatenate(err_sq, axis=1)
        for i, c in enumerate(chunk):
            if c.key in done:
                continue
            record = sweep_record(c, nll_all[i], err_all[i], ref_sq, dense_ppl, weight_errors[i], zero_fractions[i])
            append_jsonl(results_path, record)
            done[c.key] = json.loads(json.dumps(plain(record), sort_keys=True))
            count += 1
            if on_record is not None:
                on_record(count)
    return [done[c.key] for c in configurations], reference
