"""Recovery training after compression: :mod:`rhojax.heal.core` trains, :mod:`rhojax.heal.study` evaluates."""

from rhojax.heal.core import (
    MODES,
    HealResult,
    HealSettings,
    calibration_loss,
    check_compressed,
    check_settings,
    heal,
    merge,
    zero_fraction,
)
from rhojax.heal.study import HealProtocol, heal_study

__all__ = [
    "MODES",
    "HealProtocol",
    "HealResult",
    "HealSettings",
    "calibration_loss",
    "check_compressed",
    "check_settings",
    "heal",
    "heal_study",
    "merge",
    "zero_fraction",
]
