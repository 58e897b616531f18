"""Locate the first NaN or Inf in a forward pass: which layer, and which stage of the computation.

A non-finite value propagates: once one entry of a hidden state is NaN or Inf, every later value
it feeds is too, and an average over tokens or windows turns it into a single meaningless NaN. So
instead of reporting the symptom, :func:`locate_nonfinite` counts the non-finite entries of every
intermediate value of one forward pass, in computation order,

    embedding -> (per layer) attn_norm, attention, [post_attn_norm], attn_residual,
                 mlp_norm, mlp, [post_mlp_norm], mlp_residual -> final_norm -> logits,

and returns the first one with any. The stage is one of ``embedding``, ``attention``, ``mlp``,
``norm``, ``logits`` (a residual sum that overflows is charged to the branch just added).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.models.transformer import STAGE_KINDS, block_stages, default_positions, embed, layer_norm, unembed

STAGES = ("embedding", "attention", "mlp", "norm", "logits")


@dataclasses.dataclass(frozen=True)
class NonFinite:
    """Where a forward pass first produced NaN/Inf: ``stage`` in :data:`STAGES`, ``layer`` (None outside
    the blocks), ``step`` the exact value (``embed``, a block stage name, ``final_norm`` or ``logits``),
    and ``count`` its non-finite entries."""

    stage: str
    layer: int | None
    step: str
    count: int

    def describe(self) -> str:
        """One line: where the first NaN/Inf appeared and how many non-finite values it had."""
        where = self.stage if self.layer is None else f"layer {self.layer}, {self.stage}"
        return f"first NaN/Inf at {where} ({self.step}: {self.count} non-finite values)"


def _bad(x: jax.Array) -> jax.Array:
    return jnp.sum(~jnp.isfinite(x))


@functools.partial(jax.jit, static_argnames="config")
def _counts(config: ModelConfig, params: dict, tokens: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Non-finite counts: embedding (), every block stage (L, S), and (final_norm, logits) (2,)."""
    positions = default_positions(tokens)
    h = embed(config, params, tokens, positions)

    def step(carry, p):
        stages = block_stages(config, p, carry, positions)
        return stages[-1][1], jnp.stack([_bad(v) for _, v in stages])

    final, per_layer = jax.lax.scan(step, h, params["blocks"])
    tail = jnp.stack([_bad(layer_norm(config, params["final_norm"], final)), _bad(unembed(config, params, final))])
    return _bad(h), per_layer, tail


def _stage_names(config: ModelConfig, params: dict, tokens: jax.Array) -> list[str]:
    """Names of :func:`block_stages`' values for this config, in order (traced abstractly, no compute)."""
    p = jax.tree.map(lambda a: a[0], params["blocks"])
    h = jax.ShapeDtypeStruct((*tokens.shape, config.hidden_size), params["embed"].dtype)
    names: list[str] = []

    def trace(p, h):
        names.extend(name for name, _ in block_stages(config, p, h, default_positions(tokens)))

    jax.eval_shape(trace, p, h)
    return names


def locate_nonfinite(config: ModelConfig, params: dict, tokens) -> NonFinite | None:
    """The first NaN/Inf of ``forward(config, params, tokens)`` in computation order, or None if all finite.

    ``tokens`` is (..., T). One forward pass, counting non-finite entries of every intermediate value.
    """
    tokens = jnp.asarray(tokens)
    embed_bad, per_layer, tail = (np.asarray(x) for x in _counts(config, params, tokens))
    if embed_bad:
        return NonFinite("embedding", None, "embed", int(embed_bad))
    names = _stage_names(config, params, tokens)
    for layer, row in enumerate(per_layer):
        for name, count in zip(names, row, strict=True):
            if count:
                return NonFinite(STAGE_KINDS[name], layer, name, int(count))
    for (stage, name), count in zip((("norm", "final_norm"), ("logits", "logits")), tail, strict=True):
        if count:
            return NonFinite(stage, None, name, int(count))
    return None
