"""Compression levels swept by the bound checker: one :class:`Level` is one method at one setting.

The operators are ``rhojax.compress.compress_matrix``; this module only names the settings.
"""

from __future__ import annotations

import dataclasses

import jax

from rhojax.compress import compress_matrix
from rhojax.compress.calibration import MatrixStats
from rhojax.errors import RhojaxError


@dataclasses.dataclass(frozen=True)
class Level:
    """``method`` at ``value``: a sparsity, a rank fraction (rank ``max(1, round(f min(in, out)))``),
    or a bit width; with an optional quantization ``group_size`` or N:M pattern ``nm``."""

    method: str
    value: float | int | None
    group_size: int | None = None
    nm: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        if self.nm is not None:
            return f"{self.method}:{self.nm[0]}of{self.nm[1]}"
        group = f":g{self.group_size}" if self.group_size else ""
        return f"{self.method}:{self.value}{group}"

    def compress(self, w: jax.Array, stats: MatrixStats | None, key: jax.Array | None) -> jax.Array:
        """``w`` compressed at this level with ``rhojax.compress.compress_matrix``."""
        value = self.value
        if self.method in ("lowrank", "lowrank_aware"):
            value = max(1, round(float(self.value) * min(w.shape)))
        return compress_matrix(self.method, w, value, stats, key, nm=self.nm, group_size=self.group_size)

    def applies_to(self, shape: tuple[int, int]) -> bool:
        """False when the setting does not fit the matrix (a group size or N:M group not dividing ``in``)."""
        block = self.group_size or (self.nm[1] if self.nm else 1)
        return shape[0] % block == 0


BITS = (2, 3, 4, 5, 6, 7, 8)
GROUP_SIZES = (None, 8, 16, 32, 48, 64, 96, 192)


def default_levels() -> tuple[Level, ...]:
    """The CPU-sized sweep (80 levels: 16,800 configurations on SmolLM2's 210 sites), cheapest first.

    On a 2-core CPU one magnitude level costs ~5x an RTN level (two sorts per matrix), SparseGPT
    and an SVD ~10x, so RTN gets its 56 bit-width x group-size settings and rotated RTN 15, which
    alone give 14,910 configurations; the pruning and low-rank settings follow. ``full_levels`` is
    the balanced sweep for an accelerator.
    """
    return (
        *(Level("rtn", b, group_size=g) for b in BITS for g in GROUP_SIZES),
        *(Level("rotated_rtn", b, group_size=g) for b in (2, 3, 4, 6, 8) for g in (None, 32, 64)),
        Level("magnitude", 0.5),
        Level("magnitude", None, nm=(2, 4)),
        Level("wanda", 0.5),
        Level("sparsegpt", 0.5),
        Level("lowrank", 0.25),
        Level("magnitude", 0.1),
        Level("wanda", 0.1),
        Level("magnitude", 0.7),
        Level("wanda", 0.7),
    )


def full_levels() -> tuple[Level, ...]:
    """Every method at twelve settings (for an accelerator: SparseGPT and SVD dominate the cost)."""
    sparsities = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    ranks = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9)
    quant = [(b, g) for b in (2, 3, 4, 5, 6, 8) for g in (None, 64)]
    return (
        *(Level(m, s) for m in ("magnitude", "wanda", "sparsegpt") for s in sparsities),
        *(Level("lowrank", f) for f in ranks),
        *(Level(m, b, group_size=g) for m in ("rtn", "rotated_rtn") for b, g in quant),
    )


def quick_levels() -> tuple[Level, ...]:
    """Two levels, to try the command out."""
    return (Level("rtn", 4), Level("magnitude", 0.5))


def smoke_levels() -> tuple[Level, ...]:
    """One level, for tests of the machinery (the main job's smoke budget)."""
    return (Level("rtn", 4),)


PLANS = {"default": default_levels, "full": full_levels, "quick": quick_levels, "smoke": smoke_levels}


def plan(name: str) -> tuple[Level, ...]:
    if name not in PLANS:
        raise RhojaxError(f"--plan {name!r}: choose from {', '.join(PLANS)}")
    return PLANS[name]()
