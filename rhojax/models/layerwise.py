"""The block-by-block driver of streamed analyses: one block in memory, every window's states cached.

For windows ``tokens`` (N, T) and a :class:`~rhojax.io.stream.BlockStream` (or any object with ``config``,
``top`` and ``block(t)``), :func:`walk_blocks` computes

    h_0 = embed(tokens);   for t = 0..L-1:  p = block(t),  h_{t+1} = B_t(h_t),  visit(t, p, h_t, h_{t+1})

and returns ``h_L`` (N, T, D). Only ``h_t`` and ``h_{t+1}`` of all windows and block ``t``'s params are
alive at step ``t``; the visitor computes what an analysis needs from that layer while its block is
loaded. Blocks run ``batch`` windows per compiled call (one compilation serves every layer).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block, block_params, default_positions, embed


@dataclasses.dataclass(frozen=True)
class ResidentBlocks:
    """A resident params tree seen by :func:`walk_blocks`: ``top`` and ``block(t)`` sliced from ``params``."""

    config: ModelConfig
    params: dict

    @property
    def top(self) -> dict:
        """Embeddings, final norm and head: every entry but the stacked ``blocks``."""
        return {k: v for k, v in self.params.items() if k != "blocks"}

    def block(self, t: int) -> dict:
        """The params of block ``t``."""
        return block_params(self.params, t)


#: ``visit(layer, block_params, h_in, h_out)``, called once per layer while the block is loaded.
Visitor = Callable[[int, dict, jax.Array, jax.Array], None]


@functools.partial(jax.jit, static_argnames="config")
def _block(config: ModelConfig, p: dict, h: jax.Array) -> jax.Array:
    return block(config, p, h, default_positions(h[0, :, 0]))


def apply_block(config: ModelConfig, p: dict, h: jax.Array, *, batch: int | None = None) -> jax.Array:
    """``B(h)`` for block params ``p`` and states ``h`` (..., T, D), ``batch`` rows of the flattened
    leading axes per compiled call (None: all at once)."""
    flat = h.reshape(-1, *h.shape[-2:])
    if batch is None or batch >= flat.shape[0]:
        return _block(config, p, flat).reshape(h.shape)
    parts = [_block(config, p, flat[i : i + batch]) for i in range(0, flat.shape[0], batch)]
    return jnp.concatenate(parts).reshape(h.shape)


@functools.partial(jax.jit, static_argnames="config")
def embed_tokens(config: ModelConfig, top: dict, tokens: jax.Array) -> jax.Array:
    """``h_0`` (N, T, D) of windows ``tokens`` (N, T) from the resident top-level params."""
    return embed(config, top, tokens, default_positions(tokens))


def walk_blocks(stream, windows: np.ndarray, visit: Visitor | None = None, *, batch: int | None = None,
                on_layer: Callable[[int], None] | None = None) -> jax.Array:
    """Run every block of ``stream`` once over ``windows`` (N, T), calling ``visit`` at each layer; ``h_L``.

    ``on_layer(t + 1)`` reports progress after layer ``t``.
    """
    config = stream.config
    h = embed_tokens(config, stream.top, jnp.asarray(np.asarray(windows, np.int32)))
    for t in range(config.num_layers):
        p = stream.block(t)
        h_next = apply_block(config, p, h, batch=batch)
        if visit is not None:
            visit(t, p, h, h_next)
        del p
        h = h_next
        if on_layer is not None:
            on_layer(t + 1)
    return h
