"""The answer section's rules on hand-made summaries whose verdicts follow from the thresholds by hand."""

from __future__ import annotations

import numpy as np

from rhojax.analysis.answer import (
    AnswerSettings,
    amplifying_layers,
    bounds_statement,
    matrix_verdicts,
    plan_decision,
    removal_decision,
)
from rhojax.report.html import only


def test_matrix_verdicts_follow_the_interval_rules():
    # 2 layers x 2 kinds: safe (upper <= 1.01), unsafe (lower > 1.05), inconclusive, and one unswept site
    ratio = [[1.001, 1.2], [1.03, np.nan]]
    low = [[0.99, 1.1], [0.99, np.nan]]
    high = [[1.005, 1.3], [1.08, np.nan]]
    sweep = {"maps": {"wanda@0.5": {"kinds": ["q", "up"], "ratio": ratio, "ratio_ci_low": low,
                                    "ratio_ci_high": high}}}
    v = matrix_verdicts(sweep, AnswerSettings())
    assert (v["sites"], v["safe"], v["unsafe"], v["inconclusive"]) == (3, 1, 1, 1)
    assert v["safe_sites"] == [[0, "q"]] and v["unsafe_sites"] == [[0, "up"]]
    assert v["by_kind"]["q"] == {"safe": 1, "unsafe": 0, "inconclusive": 1}
    assert v["safe_kinds"] == []  # q is safe at layer 0 only
    assert [w["layer"] for w in v["worst"]] == [0, 1, 0]  # by ratio: 1.2, 1.03, 1.001


def test_amplifying_layers_need_the_lower_bound_above_one():
    profile = {"profile": {"rho_ci": [[1.01, 1.2], [0.9, 1.1], [1.1, 1.3]],
                           "token_rho_mean_ci": [[0.95, 1.2], [1.02, 1.1], [1.05, 1.2]]}}
    amp = amplifying_layers(profile)
    assert amp == {"aggregate": [0, 2], "tokenwise": [1, 2], "both": [2]}
    assert only(amp["aggregate"], amp["both"]) == [0]


def test_removal_takes_the_largest_k_whose_upper_bound_is_within_the_cost():
    rows = [{"k": 2, "criterion": "bi", "removed_layers": [5, 6], "perplexity": 12.0, "ratio": 1.1,
             "ratio_ci": [1.05, 1.15]},
            {"k": 2, "criterion": "rho", "removed_layers": [4, 6], "perplexity": 13.0, "ratio": 1.2,
             "ratio_ci": [1.1, 1.3]},
            {"k": 4, "criterion": "rho", "removed_layers": [3, 4, 5, 6], "perplexity": 14.0, "ratio": 1.24,
             "ratio_ci": [1.2, 1.26]}]
    decision = removal_decision({"depth": rows}, AnswerSettings(removal_cost=0.25))
    assert decision["recommended"]["k"] == 2 and decision["recommended"]["criterion"] == "bi"
    wider = removal_decision({"depth": rows}, AnswerSettings(removal_cost=0.3))
    assert wider["recommended"]["removed_layers"] == [3, 4, 5, 6]
    none = removal_decision({"depth": rows}, AnswerSettings(removal_cost=0.01))
    assert none["recommended"] is None and "no tested removal" in none["statement_html"]


def test_bounds_statement_counts_violations_and_reports_the_ranking():
    bounds = {"checker": {"evaluations": 1380, "configurations": 210, "violations": 0,
                          "theorems": {"a": {}, "b": {}}},
              "sites": {"configurations": 210, "violations": 2,
                        "spearman": {"wanda:0.5": {"bound_vs_ppl_ratio": -0.4}}}}
    s = bounds_statement(bounds)
    assert s["violations"] == 2 and s["spearman"] == {"wanda:0.5": -0.4}
    assert "1,380 inequalities of 2 theorems" in s["statement_html"]
    assert "-0.40 (wanda:0.5)" in s["statement_html"] and "href='#bounds'" in s["statement_html"]
    assert "not measured" in bounds_statement({})["statement_html"]


def _plan_summary(plan_ppl_windows, baseline_windows, *, applied=True):
    from rhojax.eval.intervals import ratio_ci

    plan = {"removed_layers": [3], "action_counts": {"wanda@0.5": 20, "wanda@0.7": 4},
            "predicted_delta_loss": 0.25}
    summary = {"settings": {"target": "params=0.5"}, "plan": plan}
    if applied:
        nll, ref = np.asarray(plan_ppl_windows, float), np.asarray(baseline_windows, float)
        plan.update(perplexity=float(np.exp(nll.mean() / 9)), ratio=1.3, ratio_ci=[1.2, 1.4])
        summary.update(best_baseline="uniform_wanda", plan_vs_best_baseline=float(np.exp((nll - ref).mean() / 9)),
                       plan_vs_best_baseline_ci=list(ratio_ci(nll, ref, 9, boots=200, seed=0)))
    return summary


def test_plan_is_said_to_beat_the_best_baseline_only_beyond_the_noise():
    rng = np.random.default_rng(0)
    ref = 30.0 + rng.normal(0, 1, 50)
    better = plan_decision(_plan_summary(ref - 3.0 + rng.normal(0, 0.1, 50), ref))
    assert better["verdict"] == "better beyond the noise" and better["plan_vs_best_baseline_ci"][1] < 1
    assert "beaten by x0.7" in better["statement_html"] and "removes blocks [3]" in better["statement_html"]
    worse = plan_decision(_plan_summary(ref + 3.0 + rng.normal(0, 0.1, 50), ref))
    assert worse["verdict"] == "worse beyond the noise" and "use the baseline" in worse["statement_html"]
    tie = plan_decision(_plan_summary(ref + rng.normal(0, 2.0, 50), ref))
    assert tie["verdict"] == "within the noise"
    lo, hi = tie["plan_vs_best_baseline_ci"]
    assert lo < 1 < hi
    unverified = plan_decision(_plan_summary(None, None, applied=False))
    assert "not verified" in unverified["statement_html"] and "verdict" not in unverified
