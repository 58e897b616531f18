"""Address one weight matrix of the block stack: a *site* ``(layer, kind)``.

Block weights are stacked on a leading layer axis (``params["blocks"][kind]["w"]`` has shape
``(L, in, out)``), so one site is the slice ``[layer]`` of that array. :func:`get_site` reads it and
:func:`set_site` returns a **new** params tree with it replaced (pure: nothing is modified in place, and
every other array is shared with the input). Both work under ``jax.jit``, ``jax.vmap`` and ``jax.grad``;
``layer`` may then be a traced integer (its range is checked only when it is concrete).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rhojax.errors import RhojaxError
from rhojax.models.config import SITE_KINDS

Site = tuple[int, str]


def site_kinds_of(params: dict) -> tuple[str, ...]:
    """The weight kinds present in ``params["blocks"]``, in the canonical order of ``SITE_KINDS``."""
    blocks = params.get("blocks") if isinstance(params, dict) else None
    if not isinstance(blocks, dict):
        raise RhojaxError("params has no 'blocks' entry: pass the params tree of a rhojax model")
    return tuple(kind for kind in SITE_KINDS if kind in blocks)


def _check_site(params: dict, site: Site) -> tuple[int | jax.Array, str]:
    try:
        layer, kind = site
    except (TypeError, ValueError):
        raise RhojaxError(f"site {site!r}: give a pair (layer, kind), e.g. (5, 'up')") from None
    kinds = site_kinds_of(params)
    if kind not in kinds:
        raise RhojaxError(f"site kind {kind!r}: choose one of {', '.join(kinds)}")
    num = params["blocks"][kind]["w"].shape[0]
    if not isinstance(layer, jax.core.Tracer):
        if int(layer) != layer or not 0 <= int(layer) < num:
            raise RhojaxError(f"site layer {layer!r}: choose an integer in 0..{num - 1}")
        layer = int(layer)
    return layer, kind


def get_site(params: dict, site: Site) -> jax.Array:
    """The ``(in, out)`` weight matrix of ``site = (layer, kind)``, e.g. ``get_site(params, (5, "up"))``."""
    layer, kind = _check_site(params, site)
    return params["blocks"][kind]["w"][layer]


def set_site(params: dict, site: Site, w: jax.Array) -> dict:
    """A new params tree whose matrix ``site = (layer, kind)`` is ``w`` (in, out), cast to the stored dtype.

    Pure: ``params`` is unchanged and every other array is shared. ``w`` must have the site's shape.
    """
    layer, kind = _check_site(params, site)
    stacked = params["blocks"][kind]["w"]
    w = jnp.asarray(w)
    if w.shape != stacked.shape[1:]:
        raise RhojaxError(f"site ({layer}, {kind!r}): w has shape {w.shape}, the matrix has {stacked.shape[1:]}")
    entry = {**params["blocks"][kind], "w": stacked.at[layer].set(w.astype(stacked.dtype))}
    return {**params, "blocks": {**params["blocks"], kind: entry}}
