"""Checks that a compressed matrix is what its operator's Coq facts describe (``coq/Compression.v``).

- RTN (``round_half_even_nearest``, ``rtn_no_clipping``): every ``q(w)`` is an integer multiple of its
  group's step ``s = max|w| / (2^(b-1) - 1)`` and a nearest one: ``|q(w) - w| <= s / 2``.
- Mask pruning (``pruning_error_exact``): every entry is either kept unchanged or set to zero, so the
  error is exactly the pruned entries.

Both return the worst offence (0 when the matrix is what the operator promises), so a quantizer
rounding to the wrong grid or a pruner that changes a kept weight is caught.
"""

from __future__ import annotations

import numpy as np

from rhojax.bounds.twins import rtn_step

#: float32 operators: offences below this many steps (or relative changes) are round-off.
FLOAT32_TOLERANCE = 1e-4


def rtn_grid_offence(w: np.ndarray, quantized: np.ndarray, bits: int, group_size: int | None = None) -> float:
    """``max(distance of q/s to the nearest integer, |q - w| / s - 1/2)`` over the entries, in steps
    (entries with ``s = 0`` must be exactly 0)."""
    w, quantized = np.asarray(w, np.float64), np.asarray(quantized, np.float64)
    step = rtn_step(w, bits, group_size)
    safe = np.where(step > 0, step, 1.0)
    units = quantized / safe
    off_grid = np.abs(units - np.round(units))
    too_far = np.abs(quantized - w) / safe - 0.5
    zero_step = np.where(step > 0, 0.0, np.abs(quantized))
    return float(max(off_grid.max(), too_far.max(), zero_step.max(), 0.0))


def pruning_offence(w: np.ndarray, pruned: np.ndarray) -> float:
    """Largest relative change ``|w' - w| / |w|`` of an entry that was not set to zero (0 for a mask)."""
    w, pruned = np.asarray(w, np.float64), np.asarray(pruned, np.float64)
    changed = (pruned != 0) & (pruned != w)
    relative = np.abs(pruned - w) / np.maximum(np.abs(w), np.finfo(np.float64).tiny)
    return float(np.max(np.where(changed, relative, 0.0), initial=0.0))


def operator_offence(method: str, w: np.ndarray, compressed: np.ndarray, bits: int | None = None,
                     group_size: int | None = None) -> float | None:
    """The offence for the operators with a Coq fact (RTN; magnitude and Wanda masks), None otherwise."""
    if method == "rtn":
        return rtn_grid_offence(w, compressed, int(bits), group_size)
    if method in ("magnitude", "wanda"):
        return pruning_offence(w, compressed)
    return None
