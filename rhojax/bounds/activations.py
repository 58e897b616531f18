"""Activations of the supported families with a certified Lipschitz constant (float64 numpy).

``L = sup_x |sigma'(x)|``: SiLU ``x sigmoid(x)`` peaks at ``1.0998`` (x ~ 2.40) and tanh-GELU at
``1.1289`` (x ~ 1.50); the constants below round those up. ``tests/test_bounds_activations.py``
checks them against finite differences on a fine grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rhojax.bounds.twins import array_module


def silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)``, with ``sigmoid(x) = exp(-log(1 + exp(-x)))`` (no overflow)."""
    xp = array_module(x)
    return x * xp.exp(-xp.logaddexp(0.0, -x))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    return 0.5 * x * (1.0 + array_module(x).tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def relu(x: np.ndarray) -> np.ndarray:
    return array_module(x).maximum(x, 0.0)


def tanh(x: np.ndarray) -> np.ndarray:
    return array_module(x).tanh(x)


#: name -> (activation, Lipschitz constant)
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "silu": (silu, 1.1),
    "gelu_tanh": (gelu_tanh, 1.13),
    "relu": (relu, 1.0),
    "tanh": (tanh, 1.0),
}

#: The MLP activation of each model family.
FAMILY_ACTIVATION = {"llama": "silu", "gpt2": "gelu_tanh", "gemma3": "gelu_tanh"}
