"""Uniform compression: every site of the model compressed by the same operator and level.

This is the yardstick the Compression Fragility Index is validated against: a good CFI orders
models the way their perplexity ratio under uniform compression does.
"""

from __future__ import annotations

import numpy as np

from rhojax.compress import CalibrationStats, compress_matrix
from rhojax.compress.model import compress_sites
from rhojax.eval.perplexity import perplexity
from rhojax.models.config import ModelConfig
from rhojax.sensitivity.sweep import rotation_key


def compress_all(
    config: ModelConfig,
    params: dict,
    method: str,
    level: float,
    *,
    calibration: CalibrationStats | None = None,
    seed: int = 0,
) -> dict:
    """Params with every ``(layer, kind)`` matrix compressed independently (one-shot, dense inputs)."""
    return compress_sites(params, site_operator(method, level, calibration, seed), config.site_kinds)


def site_operator(method: str, level: float, calibration: CalibrationStats | None, seed: int):
    """``operator(w, layer, kind)``: site ``(layer, kind)`` compressed by ``method`` at ``level`` (as in the sweep)."""

    def operator(w, t: int, kind: str):
        stats = None if calibration is None else calibration.site(t, kind)
        return compress_matrix(method, w, level, stats, rotation_key(seed, t, kind))

    return operator


def uniform_ratio(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    method: str,
    level: float,
    *,
    calibration: CalibrationStats | None = None,
    seed: int = 0,
    batch_size: int = 4,
    dense_ppl: float | None = None,
) -> float:
    """``ppl(every site compressed) / ppl(dense)`` on ``windows`` (the evaluation split): the yardstick.

    ``dense_ppl`` is the dense perplexity on the same windows when the caller already has it (a sweep's
    dense reference); otherwise it is measured here.
    """
    compressed = compress_all(config, params, method, level, calibration=calibration, seed=seed)
    if dense_ppl is None:
        dense_ppl = perplexity(config, params, windows, batch_size=batch_size).perplexity
    return perplexity(config, compressed, windows, batch_size=batch_size).perplexity / dense_ppl
