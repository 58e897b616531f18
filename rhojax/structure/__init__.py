"""Structure: variance vs importance, block linear replacement, early exit (docs/definitions.md#structure)."""

from rhojax.structure.early_exit import LensRecord, collect_lens, early_exit_summary, lens_statistics
from rhojax.structure.hidden import collect_hidden, hidden_and_gradients, nll_from, run_from
from rhojax.structure.replacement import SpanFit, compression_ratio, fit_spans, r_squared, replacement_nll
from rhojax.structure.subspaces import ablation_nll, compare_subspaces, subspace_statistics

__all__ = [
    "LensRecord",
    "SpanFit",
    "ablation_nll",
    "collect_hidden",
    "collect_lens",
    "compare_subspaces",
    "compression_ratio",
    "early_exit_summary",
    "fit_spans",
    "hidden_and_gradients",
    "lens_statistics",
    "nll_from",
    "r_squared",
    "replacement_nll",
    "run_from",
    "subspace_statistics",
]
