"""The per-layer signals OWL and AlphaPruning allocate from.

- OWL outlier ratio ``D_l``: the fraction of layer ``l``'s Wanda scores ``|W_ij| * ||X_j||_2`` (over all
  its matrices together) larger than ``M`` times their mean.
- AlphaPruning: the Hill estimate of the power-law exponent of the eigenvalue spectrum of ``W^T W``
  (squared singular values of ``W``), per matrix, averaged over the layer's matrices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.allocation.schedules import OWL_M
from rhojax.compress.calibration import INPUT_OF, CalibrationStats
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig

#: Eigenvalues at or below this are treated as zero (AlphaPruning's ``EVALS_THRESH``).
EIG_FLOOR = 1e-5


def _wanda_scores(w: jax.Array, input_norm: jax.Array) -> jax.Array:
    """``|W_ij| * ||X_j||``: ``w`` is (L, in, out), ``input_norm`` (L, in)."""
    return jnp.abs(w) * input_norm[:, :, None]


def outlier_ratios(
    config: ModelConfig, params: dict, stats: CalibrationStats, m: float = OWL_M
) -> np.ndarray:
    """OWL's ``D_l`` for every layer, from the calibration input norms ``||X_j||_2`` of every matrix."""
    input_norms = {kind: np.sqrt(stats.sq_norms[INPUT_OF[kind]]) for kind in config.site_kinds}
    total = np.zeros(config.num_layers)
    count = 0
    for kind in config.site_kinds:
        scores = _wanda_scores(params["blocks"][kind]["w"], jnp.asarray(input_norms[kind]))
        total += np.asarray(scores.sum(axis=(1, 2)), dtype=np.float64)
        count += scores.shape[1] * scores.shape[2]
    threshold = jnp.asarray(m * total / count, dtype=jnp.float32)
    outliers = np.zeros(config.num_layers)
    for kind in config.site_kinds:
        scores = _wanda_scores(params["blocks"][kind]["w"], jnp.asarray(input_norms[kind]))
        outliers += np.asarray((scores > threshold[:, None, None]).sum(axis=(1, 2)), dtype=np.float64)
    return outliers / count


def hill_alpha(eigenvalues: np.ndarray) -> float:
    """Hill estimator with ``x_min`` at the median: ``1 + n / sum_{i >= N/2} log(lambda_i / lambda_{N/2})``.

    Eigenvalues are sorted ascending and those at or below :data:`EIG_FLOOR` dropped (AlphaPruning's
    ``xmin_mid`` setting).
    """
    eig = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    eig = eig[eig > EIG_FLOOR]
    if len(eig) < 2:
        raise RhojaxError("a Hill exponent needs at least two non-zero eigenvalues")
    i = len(eig) // 2
    logs = np.log(eig[i:])
    n = len(logs)
    return float(1.0 + n / (logs.sum() - n * logs[0]))


def esd_eigenvalues(w: jax.Array) -> np.ndarray:
    """Eigenvalues of ``W^T W`` (the squared singular values), batched over leading axes."""
    return np.asarray(jnp.linalg.svd(w.astype(jnp.float32), compute_uv=False), dtype=np.float64) ** 2


def layer_alphas(config: ModelConfig, params: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(alpha per layer, {kind: alpha per layer})``: the layer value is the mean over its matrices."""
    per_kind = {}
    for kind in config.site_kinds:
        eigs = esd_eigenvalues(params["blocks"][kind]["w"])
        per_kind[kind] = np.asarray([hill_alpha(e) for e in eigs])
    return np.mean(np.stack(list(per_kind.values())), axis=0), per_kind
