"""chex assertions at the public API boundaries, cheap enough to stay on.

Shape, rank and dtype checks are static: under ``jax.jit``/``vmap`` they run once at trace time and
cost nothing in the compiled program. Finiteness needs values, so :func:`assert_finite` checks
concrete arrays only and lets traced ones through (a jitted caller checks its own concrete output).
"""

from __future__ import annotations

import chex
import jax


def is_traced(tree) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def assert_finite(tree) -> None:
    """``chex.assert_tree_all_finite`` on concrete arrays; a no-op on traced ones."""
    if not is_traced(tree):
        chex.assert_tree_all_finite(tree)
