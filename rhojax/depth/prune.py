"""Physical layer deletion: the block stack loses the removed layers and the model runs fewer blocks."""

from __future__ import annotations

from collections.abc import Iterable

import jax
import numpy as np

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig


def kept_layers(num_layers: int, removed: Iterable[int]) -> np.ndarray:
    """Indices of the layers that survive removing ``removed`` (sorted, original numbering)."""
    removed = sorted({int(i) for i in removed})
    bad = [i for i in removed if not 0 <= i < num_layers]
    if bad:
        raise RhojaxError(f"layers {bad} do not exist: the model has layers 0..{num_layers - 1}")
    if len(removed) >= num_layers:
        raise RhojaxError(f"cannot remove {len(removed)} of {num_layers} layers: at least one must remain")
    return np.asarray([i for i in range(num_layers) if i not in removed], dtype=np.int32)


def remove_layers(config: ModelConfig, params: dict, removed: Iterable[int]) -> tuple[ModelConfig, dict]:
    """``(config, params)`` without the blocks in ``removed``.

    Every stacked block tensor keeps only the surviving rows of its layer axis, and
    ``config.num_layers`` shrinks accordingly, so ``forward`` scans fewer blocks.
    """
    keep = kept_layers(config.num_layers, removed)
    blocks = jax.tree.map(lambda a: a[keep], params["blocks"])
    return config.replace(num_layers=len(keep)), {**params, "blocks": blocks}
