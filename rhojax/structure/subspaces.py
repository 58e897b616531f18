"""Variance is not importance: the top-variance directions of ``h_t`` against the loss-relevant ones.

For every state ``h_t`` (t = 0..L), over calibration tokens, the sink position 0 excluded (BOS sits
there in every window and its state is identical across windows, but huge in sink models):

- variance directions ``U_var``: top-k eigenvectors of the covariance ``C_t = E[(h - mu)(h - mu)^T]``;
- importance directions ``U_imp``: top-k eigenvectors of the gradient second moment
  ``G_t = E[g g^T]``, ``g = d loss / d h_t`` (loss: summed next-token NLL of the window). Since
  ``u^T G_t u = E[(g . u)^2]``, these are the directions along which a small move of ``h_t`` changes
  the loss most, on average over tokens (a Fisher-style choice);
- principal angles ``arccos`` of the singular values of ``U_var^T U_imp``, and the overlap
  ``||U_var^T U_imp||_F^2 / k`` in [0, 1] (1: the same subspace; ``k / D`` expected by chance);
- cross capture: the share of gradient energy ``tr(U_var^T G U_var) / tr(G)`` inside the variance
  subspace and the share of variance ``tr(U_imp^T C U_imp) / tr(C)`` inside the importance subspace.

Ablation (evaluation tokens): mean-ablate a subspace ``U`` at layer t, ``h' = h - (h - mu) U U^T`` at
positions >= 1 (``mu``: the calibration mean), run blocks t..L-1 and report the NLL change, with a
random k-dimensional subspace as the control.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.structure.hidden import batches, hidden_and_gradients, nll_from
from rhojax.structure.moments import Moments, drop_positions


@dataclasses.dataclass(frozen=True)
class SubspaceStatistics:
    """Calibration statistics per state t = 0..L: ``mean``, ``covariance`` and ``grad_moment`` (``E[g g^T]``)."""

    mean: np.ndarray  # (S, D)
    covariance: np.ndarray  # (S, D, D)
    grad_moment: np.ndarray  # (S, D, D)
    tokens: int


def accumulate_statistics(hidden_grad_pairs, skip: int = 1) -> SubspaceStatistics:
    """Statistics from an iterable of ``(hidden, grads)`` batches, each ``(S, B, T, D)``."""
    acts = grads = None
    for hidden, grad in hidden_grad_pairs:
        h = drop_positions(hidden, skip)
        g = drop_positions(grad, skip)
        if acts is None:
            acts = Moments.empty(np.asarray(h.mean(1)))
            grads = Moments.empty(np.zeros(acts.shift.shape))
        acts.add(h)
        grads.add(g)
    return SubspaceStatistics(acts.mean(), acts.covariance(), grads.second_moment(), acts.count)


def subspace_statistics(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    batch_size: int = 2,
    skip: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> SubspaceStatistics:
    """Activation covariance and gradient second moment of every state over ``windows`` (calibration)."""

    def pairs():
        done = 0
        for batch in batches(windows, batch_size):
            yield hidden_and_gradients(config, params, jnp.asarray(batch))
            done += len(batch)
            if on_batch is not None:
                on_batch(done)

    return accumulate_statistics(pairs(), skip)


def top_eigenvectors(matrix: np.ndarray, k: int) -> np.ndarray:
    """Orthonormal ``(D, k)`` eigenvectors of the k largest eigenvalues of a symmetric matrix."""
    _, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return vectors[:, ::-1][:, :k]


def principal_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spans of orthonormal ``a`` and ``b``, descending."""
    return np.clip(np.linalg.svd(a.T @ b, compute_uv=False), 0.0, 1.0)


def subspace_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """``||a^T b||_F^2 / k``: mean squared principal cosine, 1 for equal spans, ``k / D`` by chance."""
    return float(np.sum((a.T @ b) ** 2) / a.shape[1])


def captured(matrix: np.ndarray, basis: np.ndarray) -> float:
    """Share of ``tr(matrix)`` inside ``span(basis)``: ``tr(U^T M U) / tr(M)``."""
    return float(np.trace(basis.T @ matrix @ basis) / np.trace(matrix))


def random_basis(key: jax.Array, dim: int, k: int) -> np.ndarray:
    """A uniformly random orthonormal ``(dim, k)`` basis (QR of a Gaussian matrix)."""
    q, _ = np.linalg.qr(np.asarray(jax.random.normal(key, (dim, k)), np.float64))
    return q


@dataclasses.dataclass(frozen=True)
class LayerSubspaces:
    """Variance and importance subspaces of one state and how they compare."""

    layer: int
    variance_basis: np.ndarray  # (D, k)
    importance_basis: np.ndarray  # (D, k)
    cosines: np.ndarray  # (k,) principal cosines, descending
    overlap: float
    gradient_in_variance: float  # tr(U_var^T G U_var) / tr(G)
    variance_in_importance: float  # tr(U_imp^T C U_imp) / tr(C)
    variance_in_variance: float  # tr(U_var^T C U_var) / tr(C)
    gradient_in_importance: float  # tr(U_imp^T G U_imp) / tr(G)

    def to_dict(self) -> dict:
        k, d = self.variance_basis.shape[1], self.variance_basis.shape[0]
        return {
            "layer": self.layer,
            "k": k,
            "overlap": self.overlap,
            "chance_overlap": k / d,
            "principal_angles_deg": np.degrees(np.arccos(self.cosines)),
            "gradient_in_variance": self.gradient_in_variance,
            "variance_in_importance": self.variance_in_importance,
            "variance_in_variance": self.variance_in_variance,
            "gradient_in_importance": self.gradient_in_importance,
        }


def compare_subspaces(stats: SubspaceStatistics, k: int) -> list[LayerSubspaces]:
    """Top-k variance vs importance subspaces of every state."""
    out = []
    for t, (cov, grad) in enumerate(zip(stats.covariance, stats.grad_moment, strict=True)):
        u_var, u_imp = top_eigenvectors(cov, k), top_eigenvectors(grad, k)
        out.append(
            LayerSubspaces(
                layer=t,
                variance_basis=u_var,
                importance_basis=u_imp,
                cosines=principal_cosines(u_var, u_imp),
                overlap=subspace_overlap(u_var, u_imp),
                gradient_in_variance=captured(grad, u_var),
                variance_in_importance=captured(cov, u_imp),
                variance_in_variance=captured(cov, u_var),
                gradient_in_importance=captured(grad, u_imp),
            )
        )
    return out


def mean_ablate(h: jax.Array, basis: jax.Array, mean: jax.Array, skip: int = 1) -> jax.Array:
    """``h - (h - mean) U U^T`` at positions >= ``skip`` of ``h`` (..., T, D); earlier positions unchanged."""
    ablated = h - ((h - mean) @ basis) @ basis.T
    keep = jnp.arange(h.shape[-2]) < skip
    return jnp.where(keep[:, None], h, ablated)


@functools.partial(jax.jit, static_argnames=("config", "skip"))
def _ablated_nll(config, params, h, layer, basis, mean, tokens, skip):
    return nll_from(config, params, mean_ablate(h, basis, mean, skip), layer, tokens)


def ablation_nll(
    config: ModelConfig,
    params: dict,
    hidden: np.ndarray,
    windows: np.ndarray,
    layer: int,
    basis: np.ndarray,
    mean: np.ndarray,
    batch_size: int = 4,
    skip: int = 1,
) -> float:
    """Mean NLL per scored token after mean-ablating ``span(basis)`` in ``h_layer``.

    ``hidden`` are the cached clean states ``(L + 1, N, T, D)`` of ``windows``; only blocks
    ``layer .. L-1`` run.
    """
    basis, mean = jnp.asarray(basis, jnp.float32), jnp.asarray(mean, jnp.float32)
    total = 0.0
    for start in range(0, len(windows), batch_size):
        sl = slice(start, start + batch_size)
        total += float(
            _ablated_nll(config, params, jnp.asarray(hidden[layer, sl]), layer, basis, mean,
                         jnp.asarray(windows[sl]), skip)
        )
    return total / (windows.shape[0] * (windows.shape[1] - 1))
