"""The per-layer signals depth pruning and allocation read, measured on clean cached states.

- ``layer_rho``: rho_t from :func:`rhojax.propagation.rho_profile` (Gaussian perturbations of relative
  size ``eps``, K samples), in its *aggregate* reading (Frobenius over all tokens, BOS included: the
  papers') or *token-wise* reading (mean over non-sink tokens of the per-token rho), averaged over samples.
- ``layer_absorption``: ``u_l`` from :func:`rhojax.propagation.absorption` at one ``eps``.
"""

from __future__ import annotations

from typing import Literal

import jax
import numpy as np

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import forward
from rhojax.propagation import Absorption, RhoProfile, absorption, rho_profile

Version = Literal["aggregate", "tokenwise"]
VERSIONS: tuple[str, ...] = ("aggregate", "tokenwise")


def rho_of(profile: RhoProfile, version: Version) -> np.ndarray:
    """Sample-mean rho per layer (L,) in the ``aggregate`` or ``tokenwise`` reading."""
    if version not in VERSIONS:
        raise RhojaxError(f"rho version {version!r}: choose aggregate or tokenwise")
    return (profile.rho if version == "aggregate" else profile.token_rho_mean).mean(axis=1)


def layer_rho(
    config: ModelConfig, params: dict, windows: np.ndarray, key: jax.Array, *, eps: float, samples: int
) -> RhoProfile:
    """The contraction profile over ``windows`` (N, T) from one clean forward (no linearised pass)."""
    _, hidden = forward(config, params, windows, return_hidden=True)
    return rho_profile(config, params, hidden, key, eps=eps, samples=samples, linearised=False)


def layer_absorption(
    config: ModelConfig, params: dict, windows: np.ndarray, key: jax.Array, *, eps: float, samples: int
) -> Absorption:
    """Aggregate-scaled absorption at one ``eps``: ``.u[0]`` is ``u_l`` (L,), ``.token_r[0]`` the token-wise r."""
    _, hidden = forward(config, params, windows, return_hidden=True)
    return absorption(config, params, hidden, key, eps_values=[eps], samples=samples)
