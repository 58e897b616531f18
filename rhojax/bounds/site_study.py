"""Site bounds on a real model: every (layer, kind) x level, against the measured block-output change,
with tightness per kind and the Spearman correlation with a sweep's perplexity sensitivity.

Each configuration compresses ONE matrix with ``rhojax.compress`` (via :class:`~rhojax.bounds.levels.Level`),
evaluates :func:`rhojax.bounds.site.site_bound` from the clean forward pass of its block and runs the
block again in float64 with the compressed matrix (:func:`rhojax.bounds.site.check_site`). Block inputs
are the model's own hidden states on the given windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.bounds import site
from rhojax.bounds.levels import Level
from rhojax.bounds.operators import FLOAT32_TOLERANCE, operator_offence
from rhojax.compress import NEEDS_HESSIAN, NEEDS_INPUT_NORM, CalibrationStats
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block_params, forward

QUANTILES = {"min": 0.0, "p05": 0.05, "median": 0.5, "p95": 0.95, "max": 1.0}
SITE_PLANS: dict[str, tuple[Level, ...]] = {
    "default": (Level("rtn", 3), Level("magnitude", 0.5), Level("wanda", 0.5)),
    "quick": (Level("rtn", 3),),
    "wanda": (Level("wanda", 0.5),),
}


def site_plan(name: str) -> tuple[Level, ...]:
    if name not in SITE_PLANS:
        raise RhojaxError(f"plan_name {name!r} is not a site plan; choose from {', '.join(SITE_PLANS)}")
    return SITE_PLANS[name]


def needs_stats(levels: Iterable[Level]) -> tuple[bool, bool]:
    """(input norms, Hessians): the calibration statistics the levels' methods need."""
    methods = {level.method for level in levels}
    return bool(methods & set(NEEDS_INPUT_NORM + NEEDS_HESSIAN)), bool(methods & set(NEEDS_HESSIAN))


def evaluate_sites(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    levels: Sequence[Level],
    *,
    stats: CalibrationStats | None = None,
    key: jax.Array,
    layers: Sequence[int] | None = None,
    kinds: Sequence[str] = site.SITE_KINDS,
    bound_fn: Callable = site.site_bound,
) -> list[dict]:
    """One row per (layer, kind, level): ``bound``, ``actual`` (block output, Frobenius over all tokens of
    ``windows`` (n, T)), ``sublayer_bound``, ``sublayer_actual``, ``token_violations``, the operator's
    ``operator_offence`` (:mod:`rhojax.bounds.operators`; None when it has no Coq fact) and ``holds``."""
    site.check_supported(config)
    _, hidden = forward(config, params, jnp.asarray(windows, jnp.int32), return_hidden=True)
    hidden = np.asarray(hidden, np.float64)
    rows = []
    for layer in range(config.num_layers) if layers is None else layers:
        p = block_params(params, layer)
        norms = site.layer_norms(p)
        cleans = [site.block_forward(config, p, hidden[layer, w]) for w in range(windows.shape[0])]
        for i, kind in enumerate(kinds):
            matrix_stats = None if stats is None else stats.site(layer, kind)
            site_key = jax.random.fold_in(jax.random.fold_in(key, layer), i)
            for level in levels:
                w2 = np.asarray(level.compress(p[kind]["w"], matrix_stats, site_key), np.float64)
                check = site.check_site(config, p, kind, w2, cleans, norms, bound_fn)
                offence = operator_offence(level.method, np.asarray(p[kind]["w"]), w2, level.value, level.group_size)
                rows.append({"layer": layer, "kind": kind, "level": level.label, "method": level.method,
                             "value": level.value, "bound": check.bound, "actual": check.actual,
                             "sublayer_bound": check.sublayer_bound, "sublayer_actual": check.sublayer_actual,
                             "token_violations": check.token_violations, "operator_offence": offence,
                             "holds": check.holds and (offence is None or offence <= FLOAT32_TOLERANCE)})
    return rows


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson correlation of the average ranks); NaN under 3 pairs."""
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def _tightness(rows: list[dict], bound: str = "bound", actual: str = "actual") -> dict:
    values = np.array([r[bound] / r[actual] for r in rows if r[actual] > 0])
    out: dict = {"n": len(rows)}
    if values.size:
        out.update({name: float(np.quantile(values, q)) for name, q in QUANTILES.items()})
    return out


def _sweep_ratio(sweep: Sequence[dict], method: str, value) -> dict[tuple[int, str], float]:
    return {(r["layer"], r["kind"]): r["ppl_ratio"] for r in sweep
            if r["method"] == method and value is not None and float(r["level"]) == float(value)}


def summarize_sites(rows: Sequence[dict], sweep: Sequence[dict] = ()) -> dict:
    """Violations, tightness (bound / actual) quantiles per kind and per (level, kind), and, per level
    found in ``sweep`` (records with layer, kind, method, level, ppl_ratio), the Spearman correlation
    over sites of the site bound, of the sublayer bound and (for reference) of the measured block change
    with ``ppl_ratio``: over all sites, and of the site bound within each kind."""
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    labels = list(dict.fromkeys(r["level"] for r in rows))
    summary: dict = {
        "configurations": len(rows),
        "violations": sum(not r["holds"] for r in rows),
        "violating_rows": [r for r in rows if not r["holds"]][:20],
        "by_kind": {k: {"tightness": _tightness([r for r in rows if r["kind"] == k]),
                        "sublayer_tightness": _tightness([r for r in rows if r["kind"] == k],
                                                         "sublayer_bound", "sublayer_actual")}
                    for k in kinds},
        "by_level": {label: {k: _tightness([r for r in rows if r["level"] == label and r["kind"] == k])
                             for k in kinds} for label in labels},
        "spearman": {},
    }
    for label in labels:
        chosen = [r for r in rows if r["level"] == label]
        ratios = _sweep_ratio(sweep, chosen[0]["method"], chosen[0]["value"])
        matched = [r for r in chosen if (r["layer"], r["kind"]) in ratios]
        if len(matched) < 3:
            continue
        ratio = [ratios[(r["layer"], r["kind"])] for r in matched]
        within = {k: spearman([r["bound"] for r in matched if r["kind"] == k],
                              [q for r, q in zip(matched, ratio, strict=True) if r["kind"] == k]) for k in kinds}
        summary["spearman"][label] = {
            "sites": len(matched),
            "bound_vs_ppl_ratio": spearman([r["bound"] for r in matched], ratio),
            "sublayer_bound_vs_ppl_ratio": spearman([r["sublayer_bound"] for r in matched], ratio),
            "measured_change_vs_ppl_ratio": spearman([r["actual"] for r in matched], ratio),
            "within_kind": within,
        }
    return summary
