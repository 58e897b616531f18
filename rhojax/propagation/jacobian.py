"""Worst-case gain of each block: the top singular value of its Jacobian, by power iteration.

``sigma_t = max_e ||J_t e|| / ||e||`` with ``J_t`` the Jacobian of ``B_t`` at the clean input ``h_t``
(Frobenius norm over all evaluated tokens). Power iteration ``v <- J^T J v / ||J^T J v||`` uses
``jax.linearize`` (jvp) and its transpose (vjp); ``sigma = ||J v||`` approaches the top singular value
from below. ``rho_max_t = sigma_t / alpha_t`` is the worst-case rho of the layer.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block
from rhojax.propagation.perturbations import frobenius


@dataclasses.dataclass(frozen=True)
class JacobianGain:
    """Per-layer largest Jacobian gain: ``alpha`` (L,), ``beta_max`` (L,) = sigma_t, ``rho_max = beta_max / alpha``."""

    alpha: np.ndarray  # (L,)
    beta_max: np.ndarray  # (L,) top singular value of J_t
    rho_max: np.ndarray  # (L,) beta_max / alpha
    iterations: int

    def to_dict(self) -> dict:
        """Every field as plain data (for JSON)."""
        return dataclasses.asdict(self)


def top_singular_value(f, x: jax.Array, v0: jax.Array, iterations: int) -> jax.Array:
    """Largest singular value of the Jacobian of ``f`` at ``x`` by ``iterations`` power steps from ``v0``."""
    _, jvp = jax.linearize(f, x)
    vjp = jax.linear_transpose(jvp, x)

    def step(_, v):
        w = vjp(jvp(v))[0]
        return w / jnp.sqrt(jnp.sum(w * w))

    v = jax.lax.fori_loop(0, iterations, step, v0 / jnp.sqrt(jnp.sum(v0 * v0)))
    return jnp.sqrt(jnp.sum(jnp.square(jvp(v))))


def layer_gain(config, p, h_in, h_out, key, layer, *, iterations) -> tuple[jax.Array, jax.Array]:
    """``(alpha_t, sigma_t)`` of block ``p`` at layer ``layer``: the per-layer step of :func:`jacobian_gain`."""
    positions = jnp.arange(h_in.shape[-2], dtype=jnp.int32)
    v0 = jax.random.normal(jax.random.fold_in(key, layer), h_in.shape, jnp.float32)
    sigma = top_singular_value(lambda x: block(config, p, x, positions), h_in, v0, iterations)
    return frobenius(h_out) / frobenius(h_in), sigma


@functools.partial(jax.jit, static_argnames=("config", "iterations"))
def _gain_arrays(config, blocks, hidden, key, *, iterations):
    def per_layer(xs):
        p, h_in, h_out, layer = xs
        return layer_gain(config, p, h_in, h_out, key, layer, iterations=iterations)

    num = hidden.shape[0] - 1
    return jax.lax.map(per_layer, (blocks, hidden[:-1], hidden[1:], jnp.arange(num)))


def gain_from_arrays(alpha, sigma, iterations: int) -> JacobianGain:
    """The :class:`JacobianGain` of per-layer ``alpha`` and ``sigma`` (L,)."""
    alpha, sigma = np.asarray(alpha, np.float64), np.asarray(sigma, np.float64)
    return JacobianGain(alpha=alpha, beta_max=sigma, rho_max=sigma / alpha, iterations=iterations)


def jacobian_gain(
    config: ModelConfig, params: dict, hidden: jax.Array, key: jax.Array, *, iterations: int = 20
) -> JacobianGain:
    """``beta_max_t`` and ``rho_max_t`` of every layer (module docstring); ``hidden`` is (L + 1, N, T, D)."""
    return gain_from_arrays(*_gain_arrays(config, params["blocks"], hidden, key, iterations=iterations), iterations)
