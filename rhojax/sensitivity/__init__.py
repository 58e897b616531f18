"""Per-matrix sensitivity: compress one site ``(layer, kind)``, keep the rest dense, measure the damage.

:func:`run_sweep` measures a grid of configurations (:func:`sweep_grid`) against a
:func:`dense_reference`; :mod:`rhojax.sensitivity.summary` reads maps (hierarchy, spread, the Compression
Fragility Index); :func:`uniform_ratio` is the every-site-at-once yardstick
(docs/definitions.md#per-matrix-sensitivity).
"""

from rhojax.sensitivity.grid import DEFAULT_LEVELS, Configuration, parse_levels, sweep_grid
from rhojax.sensitivity.summary import (
    Spread,
    compression_fragility_index,
    hierarchy,
    kendall_tau,
    kind_rank_transfer,
    ratio_map,
    select,
    spread,
)
from rhojax.sensitivity.sweep import DenseReference, dense_reference, run_sweep
from rhojax.sensitivity.uniform import compress_all, uniform_ratio

__all__ = [
    "DEFAULT_LEVELS",
    "Configuration",
    "DenseReference",
    "Spread",
    "compress_all",
    "compression_fragility_index",
    "dense_reference",
    "hierarchy",
    "kendall_tau",
    "kind_rank_transfer",
    "parse_levels",
    "ratio_map",
    "run_sweep",
    "select",
    "spread",
    "sweep_grid",
    "uniform_ratio",
]
