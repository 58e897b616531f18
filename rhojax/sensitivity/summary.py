"""Summaries of a sensitivity map: layer x kind matrix, hierarchy of kinds, spread, rank transfer, CFI.

All statistics read the perplexity ratio ``r = ppl(compressed) / ppl(dense)`` of one method at one
level. Non-finite ratios (a diverged model) are kept as ``inf`` and sort last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from rhojax.errors import RhojaxError


def select(records: Sequence[dict], method: str, level: float) -> list[dict]:
    """The records of one map: ``method`` at ``level`` (an error if there are none)."""
    chosen = [r for r in records if r["method"] == method and float(r["level"]) == float(level)]
    if not chosen:
        raise RhojaxError(f"no sweep records for method {method!r} at level {level}")
    return chosen


def _ratio(record: dict) -> float:
    value = record["ppl_ratio"]
    return float("inf") if value is None else float(value)


def ratio_map(records: Sequence[dict], num_layers: int, kinds: Sequence[str]) -> np.ndarray:
    """(layers, kinds) perplexity ratios of one method/level; NaN where a site was not swept."""
    out = np.full((num_layers, len(kinds)), np.nan)
    for r in records:
        out[r["layer"], list(kinds).index(r["kind"])] = _ratio(r)
    return out


def hierarchy(records: Sequence[dict]) -> list[tuple[str, float]]:
    """Kinds ordered from most to least sensitive by their median ratio over layers."""
    by_kind: dict[str, list[float]] = {}
    for r in records:
        by_kind.setdefault(r["kind"], []).append(_ratio(r))
    return sorted(((k, float(np.median(v))) for k, v in by_kind.items()), key=lambda kv: -kv[1])


@dataclasses.dataclass(frozen=True)
class Spread:
    """``max / min`` ratio over sites, with the sites that attain them."""

    spread: float
    max_ratio: float
    max_site: tuple[int, str]
    min_ratio: float
    min_site: tuple[int, str]


def spread(records: Sequence[dict]) -> Spread:
    """``max / min`` of the perplexity ratio over the records' sites, with the two sites."""
    hi = max(records, key=_ratio)
    lo = min(records, key=_ratio)
    return Spread(_ratio(hi) / _ratio(lo), _ratio(hi), (hi["layer"], hi["kind"]), _ratio(lo), (lo["layer"], lo["kind"]))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two paired score lists (rank agreement; 1 = same order)."""
    if len(a) != len(b) or len(a) < 2:
        raise RhojaxError("rank transfer needs two paired lists of at least two scores")
    return float(scipy_stats.kendalltau(a, b).statistic)


def kind_rank_transfer(records_a: Sequence[dict], records_b: Sequence[dict]) -> float:
    """Kendall tau between two models' median ratios per kind (kinds both models have)."""
    med_a, med_b = dict(hierarchy(records_a)), dict(hierarchy(records_b))
    kinds = sorted(set(med_a) & set(med_b))
    return kendall_tau([med_a[k] for k in kinds], [med_b[k] for k in kinds])


def compression_fragility_index(records: Sequence[dict]) -> float:
    """CFI: mean ``log10(ppl_ratio)`` over every site of a map at one method/level.

    The geometric-mean degradation (in decades) caused by compressing a single matrix, averaged
    over all matrices; 0 means no single matrix matters, 1 means a typical matrix costs 10x
    perplexity. rhojax's fixed suite is magnitude pruning at 50% (per matrix, unstructured) on
    every site; a diverged site (non-finite ratio) makes the CFI infinite.
    """
    return float(np.mean(np.log10([_ratio(r) for r in records])))
