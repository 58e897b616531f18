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
#: The weight of rank_rho each named criterion stands for (``blend`` takes it from ``lam``).
CRITERION_WEIGHTS: dict[str, float | None] = {"rho": 1.0, "bi": 0.0, "blend": None}


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
        raise RhojaxError(f"lam {lam}: the blend weight of the rho rank must lie in [0, 1]")
    if (lam > 0 and rho is None) or (lam < 1 and bi is None):
        raise RhojaxError("the blend needs rho for lam > 0 and Block Influence (bi) for lam < 1")
    n = len(rho if rho is not None else bi)
    r_rho = rho_rank(rho, rho_order) if rho is not None else np.zeros(n, np.int64)
    r_bi = ranks(bi) if bi is not None else np.zeros(n, np.int64)
    blend = lam * r_rho + (1.0 - lam) * r_bi
    return np.lexsort((np.arange(n), r_bi, blend))


def criterion_weight(criterion: str, lam: float | None = None) -> float:
    """The blend weight of rank_rho for a named criterion: 1 for ``rho``, 0 for ``bi``, ``lam`` for ``blend``."""
    if criterion not in CRITERION_WEIGHTS:
        raise RhojaxError(f"criterion {criterion!r}: choose rho, bi or blend")
    if criterion == "blend":
        if lam is None:
            raise RhojaxError("criterion 'blend' needs lam, the weight of the rho rank in [0, 1]")
        if not 0.0 <= lam <= 1.0:
            raise RhojaxError(f"lam {lam}: the blend weight of the rho rank must lie in [0, 1]")
        return float(lam)
    return CRITERION_WEIGHTS[criterion]


def rank_layers(
    criterion: str,
    *,
    rho: np.ndarray | None = None,
    bi: np.ndarray | None = None,
    lam: float | None = None,
    rho_order: RhoOrder = "ascending",
) -> list[int]:
    """Every layer, first to remove first, by the named ``criterion`` (``rho``, ``bi`` or ``blend`` with ``lam``).

    ``rank_layers("bi", bi=bi)`` is ShortGPT's order; ``rank_layers("rho", rho=rho)`` removes the
    smallest ``|rho_t - 1|`` first (``rho_order="descending"``: the largest first).
    """
    return [int(i) for i in removal_order(rho, bi, criterion_weight(criterion, lam), rho_order)]


def one_shot_removal(rho, bi, lam: float, k: int, rho_order: RhoOrder = "ascending") -> list[int]:
    """The first ``k`` layers of :func:`removal_order` scored once on the full model."""
    return [int(i) for i in removal_order(rho, bi, lam, rho_order)[:k]]


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
