"""Which layers to remove: rank-based criteria (``|rho_t - 1|``, Block Influence, their blends), one-shot or
re-scored after every removal.

Every criterion is the blend ``lam * rank_rho + (1 - lam) * rank_BI`` of two rankings in which
rank 0 is the layer to remove first: ``lam = 1`` is the rho criterion, ``lam = 0`` ShortGPT.

- ``rank_BI`` orders layers by increasing Block Influence (the least-changing block goes first).
- ``rank_rho`` orders layers by ``|rho_t - 1|``, either ``ascending`` (the block that passes a
  relative error through unchanged, the most identity-like one for errors, goes first) or
  ``descending`` (the most strongly contracting or amplifying block goes first).

Ties in the blend are broken by ``rank_BI`` and then by layer index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from rhojax.depth.prune import remove_layers
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig

RhoOrder = Literal["ascending", "descending"]
RHO_ORDERS: tuple[str, ...] = ("ascending", "descending")


def ranks(score: np.ndarray) -> np.ndarray:
    """Ordinal ranks: 0 for the smallest score (ties keep layer order)."""
    order = np.argsort(np.asarray(score, dtype=np.float64), kind="stable")
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order))
    return out


def rho_rank(rho: np.ndarray, order: RhoOrder = "ascending") -> np.ndarray:
    """Removal rank by ``|rho_t - 1|`` in the given order (rank 0 removed first)."""
    if order not in RHO_ORDERS:
        raise RhojaxError(f"rho order {order!r}: choose ascending or descending")
    distance = np.abs(np.asarray(rho, dtype=np.float64) - 1.0)
    return ranks(distance if order == "ascending" else -distance)


def removal_order(
    rho: np.ndarray | None, bi: np.ndarray | None, lam: float, rho_order: RhoOrder = "ascending"
) -> np.ndarray:
    """Layers sorted from first to last to remove by ``lam * rank_rho + (1 - lam) * rank_BI``.

    ``rho`` may be None when ``lam == 0`` and ``bi`` None when ``lam == 1``.
    """
    if not 0.0 <= lam <= 1.0:
        raise RhojaxError(f"lam={lam}: the blend weight must lie in [0, 1]")
    if (lam > 0 and rho is None) or (lam < 1 and bi is None):
        raise RhojaxError("the blend needs rho for lam > 0 and bi (Block Influence) for lam < 1")
    n = len(rho if rho is not None else bi)
    r_rho = rho_rank(rho, rho_order) if rho is not None else np.zeros(n, np.int64)
    r_bi = ranks(bi) if bi is not None else np.zeros(n, np.int64)
    blend = lam * r_rho + (1.0 - lam) * r_bi
    return np.lexsort((np.arange(n), r_bi, blend))


def one_shot_removal(rho, bi, lam: float, k: int, rho_order: RhoOrder = "ascending") -> list[int]:
    """The first ``k`` layers of :func:`removal_order` scored once on the full model."""
    return [int(i) for i in removal_order(rho, bi, lam, rho_order)[:k]]


Criterion = Literal["bi", "rho", "blend"]
CRITERIA: tuple[str, ...] = ("bi", "rho", "blend")


def _layer_values(values, name: str) -> np.ndarray | None:
    """``values`` as a (L,) float64 array: a per-layer array, a (L, K) per-sample array (its sample mean),
    or a result object (its ``bi`` for Block Influence, its aggregate sample-mean ``rho`` for a profile)."""
    if values is None:
        return None
    if hasattr(values, name):
        values = getattr(values, name)
    values = np.asarray(values, np.float64)
    if values.ndim == 2:
        values = values.mean(axis=1)
    if values.ndim != 1:
        raise RhojaxError(f"{name} of shape {values.shape}: give one value per layer (L,) or samples (L, K)")
    return values


def rank_layers(
    criterion: Criterion,
    *,
    bi=None,
    rho=None,
    lam: float = 0.5,
    rho_order: RhoOrder = "ascending",
) -> np.ndarray:
    """Layers sorted from the first to the last to remove, by a named criterion (docs/definitions.md#depth-pruning).

    - ``"bi"``: increasing Block Influence ``bi`` (ShortGPT: the least-changing block first);
    - ``"rho"``: ``|rho_t - 1|`` in ``rho_order`` (``ascending``: the block closest to passing a relative
      error through unchanged first);
    - ``"blend"``: ``lam * rank_rho + (1 - lam) * rank_BI``, ties by ``rank_BI`` then layer index.

    ``bi`` is a :class:`~rhojax.depth.influence.BlockInfluence` or a (L,) array; ``rho`` a
    :class:`~rhojax.propagation.profile.RhoProfile` (aggregate sample mean), a (L,) array or (L, K) samples.
    Returns an int array (L,); ``rank_layers(...)[:k]`` are the ``k`` layers to remove.
    """
    if criterion not in CRITERIA:
        raise RhojaxError(f"criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    bi, rho = _layer_values(bi, "bi"), _layer_values(rho, "rho")
    needed = {"bi": ("bi",), "rho": ("rho",), "blend": ("bi", "rho")}[criterion]
    missing = [name for name in needed if {"bi": bi, "rho": rho}[name] is None]
    if missing:
        raise RhojaxError(f"criterion {criterion!r} needs {' and '.join(missing)}")
    weight = {"bi": 0.0, "rho": 1.0, "blend": lam}[criterion]
    return removal_order(rho if weight > 0 else None, bi if weight < 1 else None, weight, rho_order)


def iterative_removal(
    config: ModelConfig, params: dict, k: int, pick: Callable[[ModelConfig, dict], int]
) -> list[int]:
    """Remove ``k`` layers one at a time, re-scoring the pruned model before each removal.

    ``pick(config, params)`` returns the index (in the current, already pruned model) of the
    next layer to remove. Returned indices are in the original model's numbering, in removal order.
    """
    surviving = np.arange(config.num_layers)
    removed: list[int] = []
    for _ in range(k):
        j = int(pick(config, params))
        removed.append(int(surviving[j]))
        config, params = remove_layers(config, params, [j])
        surviving = np.delete(surviving, j)
    return removed
