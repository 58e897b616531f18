"""The multiple-choice knapsack behind a plan, solved exactly by dynamic programming over a discretised budget.

Problem: groups ``g = 1..G``, each with options ``o`` of integer weight ``w_go >= 0`` and cost ``c_go``;
choose one option per group to minimise ``sum c`` subject to ``sum w <= W``. The table
``F_g(b) = min_o F_{g-1}(b - w_go) + c_go`` (``F_0(b) = 0`` for ``b >= 0``: "total weight at most b") is
exact, in ``O(W * sum_g |options_g|)`` time, with back-pointers to recover the choice.

A plan has two levels: a block is either removed (one option) or keeps its matrices, each with its own
options. :func:`solve_layered` first solves each block's matrices exactly for every budget ``b``
(its frontier ``T_l(b)``), then treats each block as one group whose options are "removed" and the
budget points where ``T_l`` improves, and solves across blocks; the result is the exact optimum of the
two-level problem.

Real-valued costs (params, FLOPs, bytes) become integer weights by :func:`discretise`: ``ceil(amount / u)``
with ``u = budget / bins``. Rounding up keeps every returned plan within the real budget; the price is
that the optimum found is at least as good as the true optimum at the budget ``budget - G u`` (each
group loses at most one unit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from rhojax.errors import RhojaxError


@dataclasses.dataclass(frozen=True)
class Group:
    """The options of one group: integer ``weights`` (O,) and ``costs`` (O,)."""

    weights: np.ndarray
    costs: np.ndarray

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.costs) or len(self.weights) == 0:
            raise RhojaxError("a knapsack group needs as many costs as weights, and at least one option")


def discretise(amounts: np.ndarray, budget: float, bins: int) -> np.ndarray:
    """Integer weights ``ceil(amount / (budget / bins))`` (a tiny tolerance absorbs float noise)."""
    if budget <= 0 or bins < 1:
        raise RhojaxError(f"budget {budget} and bins {bins} must both be positive")
    units = np.asarray(amounts, np.float64) / (budget / bins)
    return np.ceil(units - 1e-9).astype(np.int64).clip(min=0)


def _tables(groups: Sequence[Group], capacity: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``F_G`` (capacity + 1,) and the back-pointer (argmin option) of every group at every budget."""
    table = np.zeros(capacity + 1)
    pointers = []
    for g in groups:
        best = np.full(capacity + 1, np.inf)
        choice = np.zeros(capacity + 1, np.int64)
        for o, (w, c) in enumerate(zip(g.weights, g.costs, strict=True)):
            if w > capacity:
                continue
            candidate = np.full(capacity + 1, np.inf)
            candidate[w:] = table[: capacity + 1 - w] + c
            better = candidate < best
            best[better] = candidate[better]
            choice[better] = o
        table = best
        pointers.append(choice)
    return table, pointers


def _backtrack(groups: Sequence[Group], pointers: list[np.ndarray], budget: int) -> list[int]:
    choices = []
    for g, pointer in zip(reversed(groups), reversed(pointers), strict=True):
        o = int(pointer[budget])
        choices.append(o)
        budget -= int(g.weights[o])
    return choices[::-1]


def solve(groups: Sequence[Group], capacity: int) -> tuple[list[int], float]:
    """The option of each group minimising total cost with total weight ``<= capacity``, and that cost.

    Raises :class:`~rhojax.errors.RhojaxError` when even the lightest options exceed ``capacity``.
    """
    table, pointers = _tables(groups, capacity)
    if not np.isfinite(table[capacity]):
        raise RhojaxError(f"no choice fits the capacity {capacity}: the lightest options weigh "
                          f"{sum(int(np.min(g.weights)) for g in groups)}")
    return _backtrack(groups, pointers, capacity), float(table[capacity])


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of the two-level problem: its matrices' groups, and the removal option (or None)."""

    groups: tuple[Group, ...]
    removal: tuple[int, float] | None = None


def solve_layered(blocks: Sequence[Block], capacity: int) -> tuple[list[list[int] | None], float]:
    """Per block: ``None`` if removed, else the option of each of its groups; and the total cost.

    Exact for the two-level problem (see the module docstring)."""
    frontiers, block_groups = [], []
    for block in blocks:
        table, pointers = _tables(block.groups, capacity)
        points = [b for b in range(capacity + 1) if np.isfinite(table[b]) and (b == 0 or table[b] < table[b - 1])]
        weights, costs = [int(b) for b in points], [float(table[b]) for b in points]
        if block.removal is not None:
            weights.append(int(block.removal[0]))
            costs.append(float(block.removal[1]))
        if not weights:
            raise RhojaxError(f"no choice fits the capacity {capacity} inside one block")
        frontiers.append((pointers, points))
        block_groups.append(Group(np.asarray(weights), np.asarray(costs)))
    picks, total = solve(block_groups, capacity)
    result: list[list[int] | None] = []
    for block, (pointers, points), pick in zip(blocks, frontiers, picks, strict=True):
        if pick == len(points):  # the appended removal option
            result.append(None)
        else:
            result.append(_backtrack(block.groups, pointers, points[pick]))
    return result, total
