"""The sweep grid: one configuration = one site ``(layer, kind)`` compressed by one method at one level."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from rhojax.compress import METHODS
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig

#: Level used for a method when none is given: 50% sparsity, rank 64, 4 bits.
DEFAULT_LEVELS: dict[str, tuple[float, ...]] = {
    "magnitude": (0.5,), "magnitude_row": (0.5,), "wanda": (0.5,), "sparsegpt": (0.5,), "sparsegpt_row": (0.5,),
    "lowrank": (64,), "lowrank_aware": (64,), "rtn": (4,), "rotated_rtn": (4,),
}


class Configuration(NamedTuple):
    """One point of a sweep: compress site ``(layer, kind)`` with ``method`` at ``level``."""

    layer: int
    kind: str
    method: str
    level: float

    @property
    def key(self) -> tuple[int, str, str, float]:
        """``(layer, kind, method, level)`` with a float level: the identity of a record."""
        return (self.layer, self.kind, self.method, float(self.level))


def parse_levels(methods: Iterable[str], specs: Iterable[str]) -> dict[str, tuple[float, ...]]:
    """Levels per method from CLI specs: ``"0.5,0.7"`` (every method) or ``"rtn=4,8"`` (one method)."""
    methods = tuple(methods)
    for m in methods:
        if m not in METHODS:
            raise RhojaxError(f"method {m!r} is unknown; choose from {', '.join(METHODS)}")
    levels = {m: DEFAULT_LEVELS[m] for m in methods}
    for spec in specs:
        target, _, values = spec.rpartition("=")
        try:
            parsed = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise RhojaxError(f"levels {spec!r}: levels must be numbers, e.g. 0.5 or rtn=4,8") from None
        if not parsed:
            raise RhojaxError(f"levels {spec!r} names no level")
        if target and target not in methods:
            raise RhojaxError(f"levels {spec!r}: method {target!r} is not among the methods {', '.join(methods)}")
        for m in (target,) if target else methods:
            levels[m] = parsed
    return levels


def sweep_grid(
    config: ModelConfig,
    levels: Mapping[str, tuple[float, ...]],
    *,
    layers: Iterable[int] | None = None,
    kinds: Iterable[str] | None = None,
) -> list[Configuration]:
    """Every ``(layer, kind, method, level)``, layer-major (configurations of one layer are adjacent)."""
    layers = tuple(range(config.num_layers)) if layers is None else tuple(layers)
    kinds = config.site_kinds if kinds is None else tuple(kinds)
    for layer in layers:
        if not 0 <= layer < config.num_layers:
            raise RhojaxError(f"layer {layer}: the model has layers 0..{config.num_layers - 1}")
    for kind in kinds:
        if kind not in config.site_kinds:
            raise RhojaxError(f"kind {kind!r}: this model has {', '.join(config.site_kinds)}")
    return [
        Configuration(layer, kind, method, float(level))
        for layer in layers
        for kind in kinds
        for method, method_levels in levels.items()
        for level in method_levels
    ]
