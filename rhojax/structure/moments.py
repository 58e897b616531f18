"""Running first and second moments of per-layer vectors, accumulated in float64.

Sums are taken about a fixed ``shift`` per layer (the first batch's mean, or zero), which keeps
the covariance ``E[(x - mu)(x - mu)^T]`` accurate when the mean is large against the spread, as it
is in a transformer's residual stream.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _shifted_sums(x: jax.Array, shift: jax.Array) -> tuple[jax.Array, jax.Array]:
    xc = x - shift[:, None, :]
    return xc.sum(1), jnp.einsum("snd,sne->sde", xc, xc, precision=jax.lax.Precision.HIGHEST)


@dataclasses.dataclass
class Moments:
    """``count`` vectors per layer; ``total = sum (x - shift)``, ``gram = sum (x - shift)(x - shift)^T``."""

    shift: np.ndarray  # (S, D)
    total: np.ndarray  # (S, D)
    gram: np.ndarray  # (S, D, D)
    count: int = 0

    @classmethod
    def empty(cls, shift: np.ndarray) -> Moments:
        s, d = shift.shape
        return cls(np.asarray(shift, np.float64), np.zeros((s, d)), np.zeros((s, d, d)))

    def add(self, x: np.ndarray | jax.Array) -> None:
        """Add the vectors ``x`` of shape ``(S, n, D)`` (n vectors for each of the S layers)."""
        total, gram = _shifted_sums(jnp.asarray(x, jnp.float32), jnp.asarray(self.shift, jnp.float32))
        self.total += np.asarray(total, np.float64)
        self.gram += np.asarray(gram, np.float64)
        self.count += x.shape[1]

    def mean(self) -> np.ndarray:
        return self.shift + self.total / self.count

    def covariance(self) -> np.ndarray:
        """Centred covariance ``E[(x - mu)(x - mu)^T]`` per layer, ``(S, D, D)``."""
        m = self.total / self.count
        return self.gram / self.count - m[:, :, None] * m[:, None, :]

    def second_moment(self) -> np.ndarray:
        """Uncentred ``E[x x^T]`` per layer (requires a zero shift)."""
        if np.any(self.shift):
            raise ValueError("second_moment needs moments accumulated about a zero shift")
        return self.gram / self.count


def drop_positions(x: np.ndarray | jax.Array, skip: int) -> jax.Array:
    """``(S, B, T, D) -> (S, B * (T - skip), D)``: every token except the first ``skip`` positions."""
    x = jnp.asarray(x)[:, :, skip:, :]
    return x.reshape(x.shape[0], -1, x.shape[-1])
