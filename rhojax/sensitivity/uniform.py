"""Uniform compression: every site of the model compressed by the same operator and level.

This is the yardstick the Compression Fragility Index is validated against: a good CFI orders
models the way their perplexity ratio under uniform compression does.
"""

from __future__ import annotations

import jax.numpy as jnp

from rhojax.compress import CalibrationStats, compress_matrix
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
    blocks = dict(params["blocks"])
    for kind in config.site_kinds:
        stacked = params["blocks"][kind]["w"]
        compressed = [
            compress_matrix(method, stacked[t], level, None if calibration is None else calibration.site(t, kind),
                            rotation_key(seed, t, kind))
            for t in range(config.num_layers)
        ]
        blocks[kind] = {**params["blocks"][kind], "w": jnp.stack(compressed)}
    return {**params, "blocks": blocks}
