"""Apply a compression operator to the block matrices of a whole model."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp

#: ``operator(w, layer, kind)``: the compressed ``(in, out)`` matrix of one site.
SiteOperator = Callable[[jax.Array, int, str], jax.Array]


def compress_sites(params: dict, operator: SiteOperator, kinds: Iterable[str]) -> dict:
    """A copy of ``params`` with ``w[t] -> operator(w[t], t, kind)`` for every layer ``t`` of each of ``kinds``.

    Each site is compressed independently from its dense weights (one-shot, no sequential
    recalibration); everything outside those matrices is shared with ``params``.
    """
    blocks = dict(params["blocks"])
    for kind in kinds:
        w = blocks[kind]["w"]
        stacked = jnp.stack([jnp.asarray(operator(w[t], t, kind), w.dtype) for t in range(w.shape[0])])
        blocks[kind] = {**blocks[kind], "w": stacked}
    return {**params, "blocks": blocks}
