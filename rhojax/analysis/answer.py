"""The report's first section: which matrices, layers and sparsities are safe, from measured evidence.

Rules (every threshold is a field of :class:`AnswerSettings`, saved with the report):

- a matrix (layer, kind) is **safe** at the judged map (method@level) when the 95% upper bound of its
  perplexity ratio (one matrix compressed, paired bootstrap over evaluation windows) is at most
  ``1 + safe_cost``; **unsafe** when the 95% lower bound exceeds ``1 + unsafe_cost``; otherwise the
  evidence is not conclusive at this budget;
- the recommended **removal set** is the largest ``k`` (layers deleted) whose best criterion keeps the
  perplexity ratio's 95% upper bound within ``1 + removal_cost``;
- the recommended **allocation** is the schedule with the lowest perplexity at each sparsity, said to
  beat uniform only when its paired interval against uniform excludes 1;
- the **compression plan** (:mod:`rhojax.plan`) at the plan study's target is set against the best baseline at
  the same budget, and said to beat it only when their paired interval excludes 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rhojax.eval.intervals import ratio_ci
from rhojax.settings import setting


@dataclasses.dataclass(frozen=True)
class AnswerSettings:
    """Thresholds of the answer section."""

    judged_map: str = setting("wanda@0.5", "Sensitivity map (method@level) that judges matrices.")
    safe_cost: float = setting(0.01, "Safe: the ratio's 95% upper bound is at most 1 + this.")
    unsafe_cost: float = setting(0.05, "Unsafe: the ratio's 95% lower bound exceeds 1 + this.")
    removal_cost: float = setting(0.25, "Largest perplexity increase (95% upper bound) of the removal set.")


def matrix_verdicts(sensitivity: dict, settings: AnswerSettings) -> dict:
    """Safe / unsafe / inconclusive sites of the judged map, by kind, with the worst sites listed."""
    maps = sensitivity["maps"]
    label = settings.judged_map if settings.judged_map in maps else next(iter(maps))
    m = maps[label]
    ratio = np.asarray(m["ratio"], dtype=float)
    lo, hi = np.asarray(m["ratio_ci_low"], dtype=float), np.asarray(m["ratio_ci_high"], dtype=float)
    swept = np.isfinite(ratio)
    safe = swept & (hi <= 1 + settings.safe_cost)
    unsafe = swept & (lo > 1 + settings.unsafe_cost)
    kinds = m["kinds"]
    by_kind = {k: {"safe": int(safe[:, j].sum()), "unsafe": int(unsafe[:, j].sum()),
                   "inconclusive": int((swept & ~safe & ~unsafe)[:, j].sum())} for j, k in enumerate(kinds)}
    sites = [(float(ratio[t, j]), int(t), int(j)) for t, j in zip(*np.nonzero(swept), strict=True)]
    worst = sorted(sites, reverse=True)[:10]
    return {
        "map": label,
        "sites": int(swept.sum()),
        "safe": int(safe.sum()),
        "unsafe": int(unsafe.sum()),
        "inconclusive": int((swept & ~safe & ~unsafe).sum()),
        "by_kind": by_kind,
        "safe_kinds": [k for k in kinds if by_kind[k]["safe"] == int(swept[:, kinds.index(k)].sum()) > 0],
        "worst": [{"layer": t, "kind": kinds[j], "ratio": r, "ci": [float(lo[t, j]), float(hi[t, j])]}
                  for r, t, j in worst],
        "safe_sites": [[int(t), kinds[j]] for t, j in zip(*np.nonzero(safe), strict=True)],
        "unsafe_sites": [[int(t), kinds[j]] for t, j in zip(*np.nonzero(unsafe), strict=True)],
    }


def amplifying_layers(profile: dict) -> dict:
    """Layers whose aggregate and token-wise rho both exceed 1 with their 95% intervals (errors grow there)."""
    p = profile["profile"]
    agg_lo = np.asarray(p["rho_ci"], dtype=float)[:, 0]
    tok_lo = np.asarray(p["token_rho_mean_ci"], dtype=float)[:, 0]
    return {
        "aggregate": [int(t) for t in np.nonzero(agg_lo > 1)[0]],
        "tokenwise": [int(t) for t in np.nonzero(tok_lo > 1)[0]],
        "both": [int(t) for t in np.nonzero((agg_lo > 1) & (tok_lo > 1))[0]],
    }


def removal_decision(depth: dict, settings: AnswerSettings) -> dict:
    """The best criterion at every k, and the largest k whose ratio stays within ``removal_cost``."""
    best = {}
    for row in depth["depth"]:
        if row["k"] not in best or row["perplexity"] < best[row["k"]]["perplexity"]:
            best[row["k"]] = row
    table = [{"k": k, "criterion": r["criterion"], "removed_layers": r["removed_layers"], "perplexity": r["perplexity"],
              "ratio": r["ratio"], "ratio_ci": r["ratio_ci"]} for k, r in sorted(best.items())]
    within = [r for r in table if r["ratio_ci"][1] <= 1 + settings.removal_cost]
    chosen = within[-1] if within else None
    if chosen is None:
        statement = (f"<b>Layer removal</b> (<a href='#depth'>evidence</a>): no tested removal stays within "
                     f"+{settings.removal_cost:.0%} perplexity (95% upper bound); the cheapest, k = {table[0]['k']} by "
                     f"{table[0]['criterion']}, costs x{table[0]['ratio']:.3g}." if table else
                     "<b>Layer removal</b>: not measured at this budget.")
    else:
        statement = (f"<b>Layer removal</b> (<a href='#depth'>evidence</a>): remove layers {chosen['removed_layers']} "
                     f"(k = {chosen['k']}, by {chosen['criterion']}): perplexity x{chosen['ratio']:.3g} "
                     f"(95% [{chosen['ratio_ci'][0]:.3g}, {chosen['ratio_ci'][1]:.3g}]), the largest tested removal "
                     f"within +{settings.removal_cost:.0%}.")
    return {"best_per_k": table, "recommended": chosen, "statement_html": statement}


def allocation_decision(depth: dict, settings: AnswerSettings) -> dict:
    """The best schedule per (method, sparsity) and whether it beats uniform beyond the noise."""
    cells: dict[tuple, list[dict]] = {}
    for row in depth["allocation"]:
        cells.setdefault((row["method"], row["sparsity"]), []).append(row)
    per_cell, parts = [], []
    for (method, sparsity), rows in sorted(cells.items()):
        best = min(rows, key=lambda r: r["perplexity"])
        uniform = next((r for r in rows if r["schedule"] == "uniform"), None)
        entry = {"method": method, "sparsity": sparsity, "schedule": best["schedule"], "ratios": best["ratios"],
                 "perplexity": best["perplexity"], "ratio": best["ratio"], "ratio_ci": best["ratio_ci"]}
        text = (f"{method} at {sparsity:.0%}: {best['schedule']} (perplexity {best['perplexity']:.4g}, "
                f"x{best['ratio']:.3g} of dense, 95% [{best['ratio_ci'][0]:.3g}, {best['ratio_ci'][1]:.3g}])")
        if uniform is not None and uniform is not best:
            per_window = depth["settings"]["seq_len"] - 1
            vs = np.exp((np.sum(best["window_nll"]) - np.sum(uniform["window_nll"]))
                        / (len(uniform["window_nll"]) * per_window))
            lo, hi = ratio_ci(best["window_nll"], uniform["window_nll"], per_window,
                              boots=depth["settings"]["boots"], seed=depth["settings"]["seed"])
            entry["vs_uniform"] = {"ratio": float(vs), "ci": [lo, hi], "beyond_noise": bool(hi < 1)}
            text += (f", x{vs:.3g} of uniform (95% [{lo:.3g}, {hi:.3g}]: "
                     + ("better beyond the noise" if hi < 1 else "within the noise") + ")")
        elif uniform is best:
            text += ", uniform itself"
        per_cell.append(entry)
        parts.append(text)
    statement = ("<b>Sparsity allocation</b> (<a href='#allocation'>evidence</a>): " + "; ".join(parts) + "."
                 if parts else "<b>Sparsity allocation</b>: not measured at this budget.")
    return {"best": per_cell, "statement_html": statement}


def bounds_statement(bounds: dict) -> dict:
    """What the formal bounds guarantee on this model: violations found (none expected) and how well the
    site bound ranks matrices against the measured sensitivity (Spearman of bound vs perplexity ratio)."""
    parts, violations = [], 0
    if "checker" in bounds:
        c = bounds["checker"]
        violations += c["violations"]
        parts.append(f"{c['evaluations']:,} inequalities of {len(c['theorems'])} theorems checked on "
                     f"{c['configurations']:,} compressed configurations of this model, {c['violations']} violated")
    rankings = {}
    if "sites" in bounds:
        sites = bounds["sites"]
        violations += sites["violations"]
        parts.append(f"the end-to-end site bound checked at {sites['configurations']:,} (matrix, level) "
                     f"configurations, {sites['violations']} violated")
        rankings = {label: r["bound_vs_ppl_ratio"] for label, r in sites["spearman"].items()}
    if not parts:
        return {"violations": 0, "statement_html": "<b>Formal bounds</b>: not measured at this budget."}
    text = "; ".join(parts) + "."
    if rankings:
        text += (" As a ranking of matrices the site bound agrees with the measured sensitivity only at Spearman "
                 + ", ".join(f"{r:.2f} ({label})" for label, r in rankings.items())
                 + ": read it as a guarantee, not as a sensitivity map.")
    return {"violations": violations, "spearman": rankings,
            "statement_html": f"<b>Formal bounds</b> (<a href='#bounds'>evidence</a>): {text}"}


def plan_decision(plan: dict) -> dict:
    """The budgeted plan next to the best baseline at the same budget, with the paired interval of their ratio."""
    p, target = plan["plan"], plan["settings"]["target"]
    removed = p["removed_layers"]
    actions = ", ".join(f"{name} x{n}" for name, n in sorted(p["action_counts"].items(), key=lambda kv: -kv[1])[:4])
    what = (f"removes blocks {removed}; " if removed else "removes no block; ") + f"most common actions {actions}"
    out = {"target": target, "removed_layers": removed, "action_counts": p["action_counts"],
           "predicted_delta_loss": p["predicted_delta_loss"]}
    if "perplexity" not in p:
        text = (f"at {target} the plan {what}, predicted loss increase {p['predicted_delta_loss']:.3g} nats/token "
                "(not verified at this budget).")
        return {**out, "statement_html": f"<b>Compression plan</b> (<a href='#plan'>evidence</a>): {text}"}
    text = (f"at {target} the plan {what}: perplexity {p['perplexity']:.4g} (x{p['ratio']:.3g} of dense, 95% "
            f"[{p['ratio_ci'][0]:.3g}, {p['ratio_ci'][1]:.3g}])")
    out.update(perplexity=p["perplexity"], ratio=p["ratio"], ratio_ci=p["ratio_ci"])
    if "best_baseline" in plan:
        vs, (lo, hi) = plan["plan_vs_best_baseline"], plan["plan_vs_best_baseline_ci"]
        verdict = "better beyond the noise" if hi < 1 else "worse beyond the noise" if lo > 1 else "within the noise"
        text += (f"; the best baseline at the same budget, {plan['best_baseline']}, is beaten by x{vs:.3g} "
                 f"(95% [{lo:.3g}, {hi:.3g}]: {verdict})" if vs < 1 else
                 f"; the best baseline at the same budget, {plan['best_baseline']}, does better: the plan is "
                 f"x{vs:.3g} of its perplexity (95% [{lo:.3g}, {hi:.3g}]: {verdict}); use the baseline")
        out.update(best_baseline=plan["best_baseline"], plan_vs_best_baseline=vs, plan_vs_best_baseline_ci=[lo, hi],
                   verdict=verdict)
    return {**out, "statement_html": f"<b>Compression plan</b> (<a href='#plan'>evidence</a>): {text}."}


def build_answer(summaries: dict, settings: AnswerSettings) -> dict:
    """The answer section from the studies' summaries (keys: study names)."""
    answer: dict = {"settings": dataclasses.asdict(settings)}
    if "sensitivity" in summaries:
        answer["matrices"] = matrix_verdicts(summaries["sensitivity"], settings)
    if "profile" in summaries:
        answer["amplifying_layers"] = amplifying_layers(summaries["profile"])
    if "depth" in summaries:
        answer["removal"] = removal_decision(summaries["depth"], settings)
        answer["allocation"] = allocation_decision(summaries["depth"], settings)
    if "bounds" in summaries:
        answer["bounds"] = bounds_statement(summaries["bounds"])
    if "plan" in summaries:
        answer["plan"] = plan_decision(summaries["plan"])
    return answer
