"""The results pages are rendered from committed data, and every data file says where it came from."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tests.scripts import import_from_scripts

ROOT = Path(__file__).resolve().parent.parent


def _pages(module: str = ""):
    """``scripts/results_pages`` or one of its modules (the renderers behind scripts/render_results.py)."""
    return import_from_scripts("results_pages" + (f".{module}" if module else ""))


def test_every_committed_page_is_what_its_data_renders():
    pages = _pages().render_all()
    assert pages
    for path, text in pages.items():
        assert (ROOT / path).read_text() == text, f"{path} differs from its data: run scripts/render_results.py"


def test_every_data_file_records_command_commit_machine_and_time():
    files = sorted((ROOT / "docs" / "results" / "data").glob("*.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text())
        p = data.get("provenance", data)  # rhojax's provenance block, or the same facts at the top level
        assert p.get("command") or p.get("script"), path
        assert len(str(p["commit"]).split("+")[0]) >= 7, path
        assert p["machine"], path
        if "provenance" in data:  # written through rhojax.provenance: versions, cores, settings, wall time
            assert p["packages"]["jax"] and p["machine"]["cores"] and p["machine"]["cpu"], path
            assert "settings" in data, path
            wall = data.get("wall_seconds", data.get("timings", {}).get("total_seconds"))
            assert isinstance(wall, int | float) and wall > 0, path


def test_the_docs_do_not_point_outside_the_repository():
    outside = ("../" + "shared", "DESIGN" + ".md")  # spelled apart so this file does not match itself
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        text = path.read_text()
        assert not any(o in text for o in outside), path


def test_plan_zero_shot_pairs_the_plan_with_its_baseline_item_by_item():
    r = _pages("plan")
    # differences 1, 0, 0, -1: mean 0, sample sd sqrt(2/3), half-width 1.96 * sqrt(2/3) / 2
    mean, lo, hi = r.paired_accuracy_difference([1, 1, 0, 0], [0, 1, 0, 1])
    assert mean == 0 and abs(hi - 1.96 * (2 / 3) ** 0.5 / 2) < 1e-12 and lo == -hi

    def row(name, correct):
        acc = sum(correct) / len(correct)
        return {"name": name, "perplexity": 10.0, "mean_acc": acc,
                "tasks": {"piqa": {"acc": acc, "acc_stderr": 0.1, "items": len(correct), "correct": correct}}}

    runs = [{"target": "params=0.5", "calib_seed": 0, "tasks": ["piqa"],
             "rows": [row("dense", [1] * 8), row("plan", [1] * 8), row("uniform_sparsegpt", [0] * 8)]}]
    text = "\n".join(r.plan_zero_shot(runs))
    assert "plan minus `uniform_sparsegpt` on the same items: piqa +100.0 points [+100.0, +100.0]." in text
    runs[0]["rows"][2] = row("uniform_sparsegpt", [1, 0] * 4)
    assert "within the noise" not in "\n".join(r.plan_zero_shot(runs))  # +50 points over 8 items, sd 0.53
    runs[0]["rows"][2] = row("uniform_sparsegpt", [1] * 7 + [0])
    assert "within the noise" in "\n".join(r.plan_zero_shot(runs))


def test_proxy_by_depth_gives_each_third_its_median_measured_over_predicted():
    # curve dL = 2 d; sites at layers 0-5 (thirds of 6 layers); measured = (3, 3, 1, 1, 0.5, 0.5) x predicted
    run = {"target": "params=0.5", "layers": 6, "loss_curve": {"kappa": 2.0, "p": 1.0},
           "loss_curve_fit": {"layer": [0, 1, 2, 3, 4, 5], "propagated_drift": [0.1, 0.2, 0.1, 0.2, 0.1, 0.2],
                              "delta_loss": [0.6, 1.2, 0.2, 0.4, 0.1, 0.2]}}
    text = "\n".join(_pages("plan").proxy_by_depth(run))
    assert "| 0-1 | 2 | 3 |" in text and "| 2-3 | 2 | 1 |" in text and "| 4-5 | 2 | 0.5 |" in text


def test_depth_exponent_table_says_when_the_fitted_plan_is_within_the_noise():
    run = {"target": "params=0.5", "calib_seed": 1, "loss_curve": {"gamma": 0.04}, "plan": {"perplexity": 60.0},
           "settings": {"amplification": "tested"}, "depth_exponent": {"best_gamma": 0.04, "p_value": 1e-5},
           "profile_plan": {"same_plan": False, "perplexity": 80.0, "fitted_vs_profile": 0.75,
                            "fitted_vs_profile_ci": [0.7, 0.8]}}
    text = "\n".join(_pages("plan").plan_depth_exponent([run]))
    assert "| `params=0.5` | 1 | `tested` | 0.04 | 1e-05 | 0.04 | 60 | 80: x0.75 [0.7, 0.8] |" in text
    run["profile_plan"]["fitted_vs_profile_ci"] = [0.9, 1.1]
    assert "within the noise" in "\n".join(_pages("plan").plan_depth_exponent([run]))
    run["profile_plan"] = {"same_plan": True}
    assert "the same plan" in "\n".join(_pages("plan").plan_depth_exponent([run]))
    assert _pages("plan").plan_depth_exponent([{"target": "x"}]) == []  # runs before the exponent was fitted


def test_anchor_lines_give_each_anchors_factor_and_the_unanchored_plan():
    run = {"anchors": [{"action": "sparsegpt_row@0.5", "measured_delta_loss": 0.13, "predicted_delta_loss": 0.45,
                        "factor": 0.2889}],
           "unanchored_plan": {"same_plan": False, "perplexity": 40.3, "anchored_vs_unanchored": 0.9,
                               "anchored_vs_unanchored_ci": [0.85, 0.95]}}
    text = "\n".join(_pages("plan").plan_anchors(run))
    assert "`sparsegpt_row@0.5` 0.13 measured, 0.45 predicted from single sites (factor 0.289)" in text
    assert "perplexity 40.3; the anchored plan is x0.9 of it [0.85, 0.95]." in text
    run["unanchored_plan"]["anchored_vs_unanchored_ci"] = [0.8, 1.05]
    assert "within the noise" in "\n".join(_pages("plan").plan_anchors(run))
    run["unanchored_plan"] = {"same_plan": True}
    assert "the same plan" in "\n".join(_pages("plan").plan_anchors(run))
    assert _pages("plan").plan_anchors({}) == []


def test_a_setting_added_since_a_record_counts_as_equal_only_at_its_default():
    same = _pages("budgets").same_settings
    defaults = {"a": 1, "plan": {"anchors": [], "k": 2}}
    assert same({"a": 1, "plan": {"k": 2}}, {"a": 1, "plan": {"anchors": [], "k": 2}}, defaults)
    assert not same({"a": 1, "plan": {"k": 2}}, {"a": 1, "plan": {"anchors": ["x"], "k": 2}}, defaults)
    assert not same({"a": 1, "plan": {"k": 3}}, {"a": 1, "plan": {"anchors": [], "k": 2}}, defaults)
    assert not same({"a": 1, "gone": 0}, {"a": 1}, defaults)  # a setting the code no longer has


def test_the_mean_over_seeds_is_geometric_with_its_interval_on_the_log_scale():
    """Two seeds at e^1 and e^3: log mean 2, sd sqrt(2), half-width t(0.975, 1) sqrt(2) / sqrt(2) = 12.706."""
    plan = _pages("plan")
    t = 12.706204736174698  # scipy.stats.t.ppf(0.975, 1)
    expected = (f"{math.exp(2):.4g} [{math.exp(2 - t):.4g}, {math.exp(2 + t):.4g}]")
    assert plan.mean_interval([math.exp(1), math.exp(3)]) == expected
    assert plan.mean_interval([5.0]) == "5 (one seed)"
