"""rhojax: where is compression of a transformer language model safe?

The top-level API (everything in ``__all__``), in the order of a typical study::

    import jax, rhojax

    model = rhojax.load("smollm2-135m")                  # a pytree: params are leaves, config is static
    logits = rhojax.forward(model, tokens)                # (N, T, V)
    nll = rhojax.loss(model, tokens)                      # mean next-token NLL: jit/vmap/grad-safe
    ppl = rhojax.perplexity(model, tokens)                # exp(loss)
    prof = rhojax.rho_profile(model, tokens, jax.random.key(0))   # prof.mean("rho"), prof.ci("rho")
    bi = rhojax.block_influence(model, tokens)            # bi.bi (L,)
    pruned = rhojax.remove_layers(model, rhojax.rank_layers("bi", bi=bi)[:4])
    w = rhojax.get_site(model, (5, "up"))                 # one (in, out) matrix
    model2 = rhojax.set_site(model, (5, "up"), rhojax.compress(w, "magnitude", 0.5))

A model is a :class:`Model` (from :func:`load`) or a pair ``(config, params)``; :class:`ModelConfig` is
hashable and static under ``jax.jit``. The subpackages (``rhojax.compress``, ``rhojax.data``,
``rhojax.depth``, ``rhojax.eval``, ``rhojax.io``, ``rhojax.models``, ``rhojax.propagation``,
``rhojax.sensitivity``, ``rhojax.allocation``, ``rhojax.structure``, ``rhojax.heal`` and ``rhojax.plan``)
export their public names in their own ``__all__``; everything else is internal. Definitions of every
quantity: docs/definitions.md; a walk-through: docs/tutorial.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.2.0"

#: Public name -> the module that defines it (imported on first use, so ``import rhojax`` stays cheap).
_EXPORTS: dict[str, str] = {
    "load": "rhojax._api",
    "forward": "rhojax._api",
    "loss": "rhojax._api",
    "perplexity": "rhojax._api",
    "rho_profile": "rhojax._api",
    "block_influence": "rhojax._api",
    "remove_layers": "rhojax._api",
    "get_site": "rhojax._api",
    "set_site": "rhojax._api",
    "rank_layers": "rhojax._api",
    "init_params": "rhojax.models.params",
    "Model": "rhojax.io.resolve",
    "ModelConfig": "rhojax.models.config",
    "RhoProfile": "rhojax.propagation.profile",
    "BlockInfluence": "rhojax.depth.influence",
    "RhojaxError": "rhojax.errors",
}

#: Subpackages reachable as attributes (``rhojax.compress`` is also callable: one matrix by method name).
_SUBPACKAGES = ("allocation", "compress", "data", "depth", "eval", "heal", "io", "models", "plan", "propagation",
                "sensitivity", "structure")

__all__ = [
    "BlockInfluence",
    "Model",
    "ModelConfig",
    "RhoProfile",
    "RhojaxError",
    "__version__",
    "block_influence",
    "compress",
    "forward",
    "get_site",
    "init_params",
    "load",
    "loss",
    "perplexity",
    "rank_layers",
    "remove_layers",
    "rho_profile",
    "set_site",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"rhojax.{name}")
    else:
        raise AttributeError(f"module 'rhojax' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))


if TYPE_CHECKING:  # what the lazy imports above resolve to, for type checkers and IDEs
    from rhojax import compress
    from rhojax._api import (
        block_influence,
        forward,
        get_site,
        load,
        loss,
        perplexity,
        rank_layers,
        remove_layers,
        rho_profile,
        set_site,
    )
    from rhojax.depth.influence import BlockInfluence
    from rhojax.errors import RhojaxError
    from rhojax.io.resolve import Model
    from rhojax.models.config import ModelConfig
    from rhojax.models.params import init_params
    from rhojax.propagation.profile import RhoProfile
