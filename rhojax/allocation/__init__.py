"""Layer-wise sparsity allocation: schedules with an exact target mean, and the signals they use."""

from rhojax.allocation.fit import bounds_around, linear_to_range, shift_to_mean
from rhojax.allocation.metrics import esd_eigenvalues, hill_alpha, layer_alphas, outlier_ratios
from rhojax.allocation.schedules import (
    absorption_corrected,
    absorption_correction,
    alpha_pruning,
    depth_increasing_sparsity,
    output_amplification,
    owl,
    rho_guided,
    uniform,
)

__all__ = [
    "absorption_corrected",
    "absorption_correction",
    "alpha_pruning",
    "bounds_around",
    "depth_increasing_sparsity",
    "esd_eigenvalues",
    "hill_alpha",
    "layer_alphas",
    "linear_to_range",
    "outlier_ratios",
    "output_amplification",
    "owl",
    "rho_guided",
    "shift_to_mean",
    "uniform",
]
