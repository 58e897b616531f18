"""The functions of rhojax's top-level API (re-exported by ``rhojax/__init__.py``; import them from there).

Every function that takes a ``model`` accepts either a :class:`rhojax.Model` (from :func:`load`) or a
pair ``(config, params)``, and functions that return a model return the same kind. Both kinds are
pytrees whose only leaves are the params (the config is static aux data), so they pass through
``jax.jit``, ``jax.vmap`` and ``jax.grad`` unchanged in structure.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rhojax import depth as _depth
from rhojax.depth.influence import BlockInfluence, influence_statistics
from rhojax.errors import RhojaxError
from rhojax.eval.loss import mean_nll
from rhojax.io.resolve import Model, load_model
from rhojax.models import sites as _sites
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import forward as _forward
from rhojax.propagation.profile import RhoProfile, rho_statistics

#: A :class:`rhojax.Model` or a pair ``(config, params)``.
ModelLike = Any


def _pair(model: ModelLike) -> tuple[ModelConfig, dict]:
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], ModelConfig):
        return model
    config, params = getattr(model, "config", None), getattr(model, "params", None)
    if isinstance(config, ModelConfig) and isinstance(params, dict):
        return config, params
    raise RhojaxError(f"model: got {type(model).__name__}; pass a rhojax.Model (from rhojax.load) or (config, params)")


def _like(model: ModelLike, config: ModelConfig, params: dict) -> ModelLike:
    if isinstance(model, tuple):
        return config, params
    return dataclasses.replace(model, config=config, params=params)


def load(spec: str, *, dtype="float32") -> Model:
    """Load a model: a packaged name (``"smollm2-135m"``), a Hugging Face folder or a ``.gguf`` file.

    ``dtype`` is ``"float32"`` (default) or ``"bfloat16"`` (a name or ``jnp.float32`` / ``jnp.bfloat16``).
    The result carries ``config``, ``params`` and ``tokenizer``.
    """
    return load_model(spec, dtype=dtype)


def forward(model: ModelLike, tokens: jax.Array, *, return_hidden: bool = False):
    """Logits (..., T, V) of ``tokens`` (..., T); with ``return_hidden`` also the states ``h_0..h_L``
    (L + 1, ..., T, D), ``h_L`` being the raw last block output (before the final norm).

    ``jax.jit(lambda m, t: rhojax.forward(m, t))(model, tokens)`` works as it is: the config is static.
    """
    config, params = _pair(model)
    return _forward(config, params, jnp.asarray(tokens), return_hidden=return_hidden)


def loss(model: ModelLike, tokens: jax.Array, mask: jax.Array | None = None, *,
         batch_size: int | None = None) -> jax.Array:
    """Mean next-token negative log-likelihood (scalar) over the scored tokens of ``tokens`` (..., T).

    ``loss = sum_i mask_i * (-log p(x_i | x_<i)) / sum_i mask_i`` over positions ``i >= 1`` of every window;
    ``mask`` (same shape as ``tokens``, 1 where the token is a target; position 0 ignored) defaults to
    all ones. Differentiable in the params: ``jax.grad(rhojax.loss)(model, tokens)`` is a model of
    gradients. ``batch_size`` runs windows (N, T) in batches with ``jax.lax.map`` to bound memory.
    """
    config, params = _pair(model)
    return mean_nll(config, params, tokens, mask, batch_size=batch_size)


def perplexity(model: ModelLike, tokens: jax.Array, mask: jax.Array | None = None, *,
               batch_size: int | None = None) -> jax.Array:
    """Perplexity ``exp(loss)`` (scalar ``jax.Array``) of windows ``tokens`` (..., T): see :func:`loss`.

    On windows ``[BOS] + chunk`` without a mask this is docs/definitions.md#perplexity exactly. For a
    bootstrap interval over windows use ``rhojax.eval.nll_sums`` and ``rhojax.eval.perplexity_ci``.
    """
    return jnp.exp(loss(model, tokens, mask, batch_size=batch_size))


def rho_profile(
    model: ModelLike,
    tokens: jax.Array,
    key: jax.Array,
    *,
    eps: float = 0.01,
    samples: int = 8,
    linearised: bool = True,
    sink_positions: tuple[int, ...] = (0,),
    layer_batch: int = 1,
) -> RhoProfile:
    """The contraction profile (alpha, beta, rho per layer) of ``model`` on windows ``tokens`` (N, T).

    ``samples`` Gaussian perturbations of relative size ``eps`` per layer (defaults as the CLI's:
    ``eps=0.01``, ``samples=8``), drawn from ``key``; see docs/definitions.md#error-propagation. Returns a
    :class:`RhoProfile` of ``jax.Array`` (``.rho`` (L, K) per sample; ``.mean("rho")`` (L,) and
    ``.ci("rho")`` (L, 2) summarise it); traceable under ``jax.jit`` and ``jax.vmap``.
    """
    config, params = _pair(model)
    _, hidden = _forward(config, params, jnp.asarray(tokens), return_hidden=True)
    return rho_statistics(config, params, hidden, key, eps=eps, samples=samples, linearised=linearised,
                          sink_positions=sink_positions, layer_batch=layer_batch)


def block_influence(model: ModelLike, tokens: jax.Array) -> BlockInfluence:
    """ShortGPT Block Influence ``BI_t = 1 - mean_tokens cos(h_t, h_{t+1})`` of every layer over windows
    ``tokens`` (N, T): a :class:`BlockInfluence` with ``.bi`` (L,) and ``.bi_without_bos`` (L,), traceable.
    """
    config, params = _pair(model)
    return influence_statistics(config, params, tokens)


def remove_layers(model: ModelLike, layers) -> ModelLike:
    """``model`` without the blocks ``layers`` (original numbering): the block stack physically shrinks and
    ``config.num_layers`` with it. Typical use: ``rhojax.remove_layers(model, rhojax.rank_layers("bi",
    bi=bi)[:k])``.
    """
    config, params = _pair(model)
    return _like(model, *_depth.remove_layers(config, params, layers))


def _per_layer(values, name: str):
    """A result's per-layer values as a (L,) array: ``.bi`` of a Block Influence, the sample mean of a
    profile's ``.rho`` (or of any (L, K) samples); None and (L,) arrays pass through."""
    if values is None:
        return None
    values = np.asarray(getattr(values, name, values), np.float64)
    return values.mean(axis=1) if values.ndim == 2 else values


def rank_layers(
    criterion: str,
    *,
    bi=None,
    rho=None,
    lam: float | None = None,
    rho_order: str = "ascending",
) -> list[int]:
    """Every layer, from the first to the last to remove, by a named depth criterion
    (docs/definitions.md#depth-pruning): ``"bi"`` (ShortGPT: smallest Block Influence first), ``"rho"``
    (``|rho_t - 1|`` in ``rho_order``) or ``"blend"`` (``lam * rank_rho + (1 - lam) * rank_BI``, ``lam`` required).

    ``bi`` is a :class:`BlockInfluence` or a (L,) array; ``rho`` a :class:`RhoProfile` (its aggregate sample
    mean), a (L,) array or (L, K) samples. ``rank_layers(...)[:k]`` are the ``k`` layers to remove.
    """
    return _depth.rank_layers(criterion, rho=_per_layer(rho, "rho"), bi=_per_layer(bi, "bi"), lam=lam,
                              rho_order=rho_order)


def get_site(model_or_params, site: tuple[int, str]) -> jax.Array:
    """The ``(in, out)`` matrix of ``site = (layer, kind)`` of a params tree, a model or a (config, params) pair.

    ``kind`` is one of ``q, k, v, o, gate, up, down`` (GPT-2 has no ``gate``); an invalid layer or kind is
    rejected with the valid choices.
    """
    params = model_or_params if isinstance(model_or_params, dict) else _pair(model_or_params)[1]
    return _sites.get_site(params, site)


def set_site(model_or_params, site: tuple[int, str], w: jax.Array):
    """A copy of a params tree, a model or a (config, params) pair whose matrix ``site = (layer, kind)`` is ``w``.

    Pure: the input is unchanged and every other array is shared; returns the same kind as given.
    ``w`` must have the site's ``(in, out)`` shape and is cast to the stored dtype.
    """
    if isinstance(model_or_params, dict):
        return _sites.set_site(model_or_params, site, w)
    config, params = _pair(model_or_params)
    return _like(model_or_params, config, _sites.set_site(params, site, w))
