"""The plan optimizer against brute force on small random instances (exact optimum of the integer problem)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rhojax.errors import RhojaxError
from rhojax.plan.optimize import Block, Group, discretise, solve, solve_layered


def random_group(rng, options):
    return Group(rng.integers(0, 6, size=options), rng.random(options).round(3))


def brute_force(groups, capacity):
    best = np.inf
    for combo in itertools.product(*(range(len(g.weights)) for g in groups)):
        weight = sum(g.weights[o] for g, o in zip(groups, combo, strict=True))
        if weight <= capacity:
            best = min(best, sum(g.costs[o] for g, o in zip(groups, combo, strict=True)))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_flat_knapsack_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    groups = [random_group(rng, rng.integers(1, 5)) for _ in range(4)]
    capacity = int(rng.integers(0, 16))
    expected = brute_force(groups, capacity)
    if not np.isfinite(expected):
        with pytest.raises(RhojaxError, match="no choice fits"):
            solve(groups, capacity)
        return
    choices, cost = solve(groups, capacity)
    assert cost == pytest.approx(expected)
    assert sum(g.weights[o] for g, o in zip(groups, choices, strict=True)) <= capacity
    assert sum(g.costs[o] for g, o in zip(groups, choices, strict=True)) == pytest.approx(expected)


def layered_brute_force(blocks, capacity):
    """Every block either removed or one option per group: enumerate it all."""
    per_block = []
    for b in blocks:
        combos = [(int(b.removal[0]), float(b.removal[1]), None)] if b.removal else []
        for combo in itertools.product(*(range(len(g.weights)) for g in b.groups)):
            combos.append((sum(int(g.weights[o]) for g, o in zip(b.groups, combo, strict=True)),
                           sum(float(g.costs[o]) for g, o in zip(b.groups, combo, strict=True)), list(combo)))
        per_block.append(combos)
    best = np.inf
    for pick in itertools.product(*per_block):
        if sum(p[0] for p in pick) <= capacity:
            best = min(best, sum(p[1] for p in pick))
    return best


@pytest.mark.parametrize("seed", range(15))
def test_layered_knapsack_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    blocks = [Block(tuple(random_group(rng, 3) for _ in range(2)),
                    (0, float(rng.random() * 2)) if rng.random() < 0.7 else None) for _ in range(3)]
    capacity = int(rng.integers(2, 20))
    expected = layered_brute_force(blocks, capacity)
    result, cost = solve_layered(blocks, capacity)
    assert cost == pytest.approx(expected)
    weight = achieved = 0.0
    for block, choice in zip(blocks, result, strict=True):
        if choice is None:
            weight, achieved = weight + block.removal[0], achieved + block.removal[1]
        else:
            weight += sum(g.weights[o] for g, o in zip(block.groups, choice, strict=True))
            achieved += sum(g.costs[o] for g, o in zip(block.groups, choice, strict=True))
    assert weight <= capacity and achieved == pytest.approx(expected)


def test_discretise_rounds_up_so_the_real_budget_holds():
    amounts = np.array([0.0, 1.0, 2.5, 10.0])
    w = discretise(amounts, budget=10.0, bins=4)  # unit 2.5
    assert w.tolist() == [0, 1, 1, 4]
    assert np.all(w * 2.5 >= amounts)
