"""Counts, violations and tightness distribution of a bound-checker run (from its JSON-lines records)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUANTILES = {"min": 0.0, "p05": 0.05, "median": 0.5, "p95": 0.95, "max": 1.0}


def level_record(result) -> dict:
    """The JSON-lines record of one :class:`~rhojax.bounds.checker.LevelResult`."""
    return {"level": result.level.label, "method": result.level.method,
            "configurations": result.configurations, "rows": result.rows()}


def _tightness(rows: list[dict]) -> dict:
    """Quantiles of ``bound / actual`` over rows with ``actual > 0``; ``exact``: rows with ``actual = 0``."""
    values = np.array([r["bound"] / r["actual"] for r in rows if r["actual"] > 0])
    out = {"exact": sum(1 for r in rows if r["actual"] == 0)}
    if values.size:
        out.update({name: float(np.quantile(values, q)) for name, q in QUANTILES.items()})
    return out


def summarize(records: Iterable[dict]) -> dict:
    """``configurations``, ``evaluations``, ``violations`` in total, per method and per theorem,
    with the tightness (bound / actual) distribution per theorem and per (theorem, method)."""
    records = list(records)
    rows = [r for rec in records for r in rec["rows"]]
    by_theorem: dict[str, list[dict]] = {}
    by_method: dict[str, dict] = {}
    for rec in records:
        m = by_method.setdefault(rec["method"], {"levels": 0, "configurations": 0, "evaluations": 0, "violations": 0})
        m["levels"] += 1
        m["configurations"] += rec["configurations"]
        m["evaluations"] += len(rec["rows"])
        m["violations"] += sum(not r["holds"] for r in rec["rows"])
    for r in rows:
        by_theorem.setdefault(r["theorem"], []).append(r)
    theorems = {}
    for name, theorem_rows in sorted(by_theorem.items()):
        methods = sorted({r["method"] for r in theorem_rows})
        theorems[name] = {
            "evaluations": len(theorem_rows),
            "violations": sum(not r["holds"] for r in theorem_rows),
            "tightness": _tightness(theorem_rows),
            "by_method": {m: _tightness([r for r in theorem_rows if r["method"] == m]) for m in methods},
        }
    return {
        "configurations": sum(rec["configurations"] for rec in records),
        "evaluations": len(rows),
        "violations": sum(not r["holds"] for r in rows),
        "violating_rows": [r for r in rows if not r["holds"]][:50],
        "by_method": by_method,
        "theorems": theorems,
    }
