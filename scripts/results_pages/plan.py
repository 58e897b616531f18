"""docs/results/plan.md (budgeted compression plans) and the rendered regions of docs/plan.md."""

from __future__ import annotations

from collections.abc import Sequence

from .common import HEADER, commit_text, comparison_note, interval, md_table, num, overlap, source_note


def earlier_runs_note(data: dict) -> list[str]:
    """The runs of a plan data file whose results came from another command or commit than its provenance's
    (seeds added by later runs): one line per run, naming its seeds and targets."""
    top = data["provenance"]
    runs: dict[tuple[str, str], list[str]] = {}
    for t in data["targets"]:
        p = t.get("provenance", top)
        if (p["command"], p["commit"]) != (top["command"], top["commit"]):
            runs.setdefault((p["command"], p["commit"]), []).append(f"{t['target']} seed {t['calib_seed']}")
    if not runs:
        return []
    lines = [f"- {', '.join(which)}: `{command}` at commit {commit_text(commit)}."
             for (command, commit), which in runs.items()]
    return ["", "Results kept from earlier runs:", "", *lines]


def _plan_row(name: str, r: dict, unit: str) -> list[str]:
    if "skipped" in r:
        return [name, "n/a", "not run: " + r["skipped"], "", "", ""]
    return [name, num(r["budget_used"][unit], 3), f"{num(r['perplexity'])} {interval(r['perplexity_ci'])}",
            f"{num(r['ratio'])} {interval(r['ratio_ci'])}", num(r.get("predicted_delta_loss")),
            num(r["measured_delta_loss"])]


def _closed_loop(loop: dict) -> str:
    corrected = ", ".join(f"{k} (x{num(v, 2)})" for k, v in loop["corrected_layers"].items()) or "none"
    if not loop["changed"]:
        return f"- Closed loop: corrected layers {corrected}; {loop['note']}."
    verdict = ("helped" if loop["helped"] else "did not help") + (
        "" if loop["significant"] else " (the paired interval contains 1: noise at this evaluation size)")
    return (f"- Closed loop: corrected layers {corrected} (measured / predicted contribution on the planned model); "
            f"the re-plan's perplexity is {num(loop['replan']['perplexity'])}, x{num(loop['replan_vs_plan'])} of the "
            f"plan's {interval(loop['replan_vs_plan_ci'])}: it {verdict}.")


def plan_anchors(t: dict) -> list[str]:
    """The anchors of one run (measured against single-site predicted loss, the factor applied) and the plan
    chosen without them."""
    if not t.get("anchors"):
        return []
    each = "; ".join(f"`{a['action']}` {num(a['measured_delta_loss'])} measured, {num(a['predicted_delta_loss'])} "
                     f"predicted from single sites (factor {num(a['factor'], 3)})" for a in t["anchors"])
    lines = [f"- Anchors (uniform plans built with sequential calibration; loss increase on the calibration "
             f"windows, nats/token): {each}."]
    u = t.get("unanchored_plan")
    if u is not None and u["same_plan"]:
        lines.append("- Without the anchors the cost model chooses the same plan.")
    elif u is not None:
        ci = u["anchored_vs_unanchored_ci"]
        lines.append(f"- Without the anchors the cost model chooses a plan of perplexity {num(u['perplexity'])}; the "
                     f"anchored plan is x{num(u['anchored_vs_unanchored'])} of it {interval(ci)}"
                     + (", within the noise." if ci[0] <= 1 <= ci[1] else "."))
    return lines


def lower_or_higher(gain: float) -> str:
    """``1 - plan / best`` as words: "12.0% lower" or "33.4% higher"."""
    return f"{100 * abs(gain):.1f}% " + ("lower" if gain >= 0 else "higher")


def plan_target(t: dict) -> list[str]:
    """One target of one seed: the plan and every baseline at the same budget."""
    unit, p = t["unit"], t["plan"]
    rows = [_plan_row("**plan**", p, unit), _plan_row("dense", {**t["dense"], "budget_used": {unit: 1.0}}, unit)]
    rows += [_plan_row(r["name"], r, unit) for r in t.get("baselines", [])]
    lines = [f"#### `{t['target']}`, calibration seed {t.get('calib_seed', 0)}", "",
             md_table(["model", f"{unit} used", "perplexity (95%)", "ratio to dense (95%)",
                       "predicted dL (nats/token)", "measured dL"], rows), ""]
    if "best_baseline" in t:
        gain = 1.0 - t["plan_vs_best_baseline"]
        ci = f" {interval(t['plan_vs_best_baseline_ci'])}" if "plan_vs_best_baseline_ci" in t else ""
        lines.append(f"- Plan vs the best baseline (`{t['best_baseline']}`): perplexity "
                     f"x{num(t['plan_vs_best_baseline'])}{ci} ({lower_or_higher(gain)}).")
    counts = ", ".join(f"{k} x{v}" for k, v in p["action_counts"].items())
    lines += [f"- The plan removes blocks {p['removed_layers'] or 'none'}; matrix actions: {counts}.",
              f"- Predicted loss increase {num(p['predicted_delta_loss'])} nats/token against "
              f"{num(p.get('measured_delta_loss_calibration'))} measured on the calibration windows and "
              f"{num(p.get('measured_delta_loss'))} on the evaluation split; loss curve kappa "
              f"{num(t['loss_curve']['kappa'])}, p {num(t['loss_curve']['p'], 3)}, depth exponent gamma "
              f"{num(t['loss_curve'].get('gamma', 1.0), 3)}"
              f"{' (the profile as is)' if t['loss_curve'].get('gamma', 1.0) == 1.0 else ' (fitted)'} on "
              f"{t.get('fit_sites', t['end_to_end'])} of {t['candidates']} candidates measured end to end"
              + (f" ({t['end_to_end']} measured end to end with every block removal)."
                 if t["end_to_end"] != t.get("fit_sites", t["end_to_end"]) else ".")]
    lines += plan_anchors(t)
    if "closed_loop" in t:
        lines.append(_closed_loop(t["closed_loop"]))
    return [*lines, ""]


def mean_interval(values: Sequence[float]) -> str:
    """Geometric mean with a 95% t-interval over seeds, both on the log scale: ``exp(m +- t s / sqrt(n))`` with
    ``m`` and ``s`` the mean and standard deviation of ``log(values)`` (perplexities and their ratios are
    multiplicative, and the interval stays positive); the value alone when there is one."""
    import numpy as np
    from scipy import stats

    v = np.log(np.asarray(values, np.float64))
    if v.size < 2:
        return f"{num(float(np.exp(v[0])))} (one seed)"
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    m = v.mean()
    return f"{num(float(np.exp(m)))} [{num(float(np.exp(m - half)))}, {num(float(np.exp(m + half)))}]"


def over_seeds(values: Sequence[float], seeds: int) -> str:
    """:func:`mean_interval` of ``values``, saying "(k of n seeds)" when some of the ``seeds`` did not run."""
    if len(values) == seeds:
        return mean_interval(values)
    shown = num(values[0]) if len(values) == 1 else mean_interval(values)
    return f"{shown} ({len(values)} of {seeds} seeds)"


def plan_seed_summary(targets: list[dict]) -> list[str]:
    """Per target: the plan and each baseline over calibration seeds, and plan vs best baseline per seed."""
    lines = []
    for target in dict.fromkeys(t["target"] for t in targets):
        runs = [t for t in targets if t["target"] == target]
        seeds = [t.get("calib_seed", 0) for t in runs]
        names = ["plan"] + [r["name"] for r in runs[0]["baselines"]]
        rows = []
        for name in names:
            rs = [t["plan"] if name == "plan" else next((r for r in t["baselines"] if r["name"] == name), None)
                  for t in runs]
            ran = [r for r in rs if r is not None]
            if any("skipped" in r for r in ran):
                rows.append([f"`{name}`", "not run: " + ran[0].get("skipped", "in some seeds"), "", ""])
                continue
            rows.append([("**plan**" if name == "plan" else f"`{name}`"),
                         over_seeds([r["perplexity"] for r in ran], len(rs)),
                         over_seeds([r["ratio"] for r in ran], len(rs)),
                         ", ".join("not run" if r is None else num(r["perplexity"]) for r in rs)])
        gains = [1.0 - t["plan_vs_best_baseline"] for t in runs if "plan_vs_best_baseline" in t]
        best = ", ".join(f"`{t['best_baseline']}`" for t in runs if "best_baseline" in t)
        verdict = ("meets" if gains and min(gains) >= 0.10 else "does not meet")
        per_seed = ", ".join(lower_or_higher(1.0 - t["plan_vs_best_baseline"])
                             + (f" (paired 95% {interval(t['plan_vs_best_baseline_ci'])}"
                                f"{', within the noise' if overlap(t['plan_vs_best_baseline_ci'], (1, 1)) else ''})"
                                if "plan_vs_best_baseline_ci" in t else "")
                             for t in runs if "plan_vs_best_baseline" in t)
        replans = [(t.get("calib_seed", 0), t["closed_loop"]["replan"]["perplexity"] / next(
            r["perplexity"] for r in t["baselines"] if r["name"] == t["best_baseline"]))
            for t in runs if t.get("closed_loop", {}).get("changed") and "best_baseline" in t]
        plural = "s" if len(runs) > 1 else ""
        lines += [f"### `{target}` over {len(runs)} calibration seed{plural} ({', '.join(map(str, seeds))})",
                  "", md_table(["model", "perplexity, geometric mean [95% t-interval over seeds, log scale]",
                                "ratio to dense", "per seed"], rows), "",
                  f"- Plan vs the best baseline of each seed ({best}): "
                  f"{per_seed}; this {verdict} the goal of at least 10% lower perplexity in every seed.",
                  *(f"- The closed loop's re-plan (seed {seed}) against the same baseline: x{num(ratio)} "
                    f"({lower_or_higher(1.0 - ratio)})." for seed, ratio in replans),
                  ""]
    return lines


def plan_prediction(applied: list[dict]) -> list[str]:
    """Predicted vs measured loss increase (calibration windows) over every verified plan, and the baselines the
    cost model can price (those on its grid)."""
    from rhojax.bounds.site_study import spearman

    pairs = [(t["target"], t.get("calib_seed", 0), "plan", t["plan"]) for t in applied]
    pairs += [(t["target"], t.get("calib_seed", 0), "re-plan (closed loop)", t["closed_loop"]["replan"])
              for t in applied if t.get("closed_loop", {}).get("changed")]
    pairs += [(t["target"], t.get("calib_seed", 0), f"`{r['name']}`", r) for t in applied
              for r in t.get("baselines", []) if r.get("predicted_delta_loss") is not None]

    def stats(rows):
        a = [r["predicted_delta_loss"] for *_, r in rows]
        b = [r["measured_delta_loss_calibration"] for *_, r in rows]
        worst = max((max(x / y, y / x) for x, y in zip(a, b, strict=True) if x > 0 and y > 0), default=None)
        low = sum(x < y for x, y in zip(a, b, strict=True))
        return (f"Spearman {num(spearman(a, b) if len(a) >= 3 else None, 3)}, worst ratio (larger over smaller) "
                f"{num(worst, 3)}, predicted below measured in {low} of {len(a)}")

    planner = [row for row in pairs if row[2] == "plan"]
    enough = "" if len(planner) >= 10 else f" The check wants at least 10 plans; this data has {len(planner)}."
    rows = [[f"`{target}`", str(seed), who, num(r["predicted_delta_loss"]), num(r["measured_delta_loss_calibration"]),
             num(r["predicted_delta_loss"] / r["measured_delta_loss_calibration"], 3)
             if r["measured_delta_loss_calibration"] > 0 else "n/a"] for target, seed, who, r in pairs]
    return ["### Predicted vs measured", "",
            f"- The planner's {len(planner)} verified plans (every target and seed, and targets planned without "
            f"baselines): {stats(planner)}.{enough}",
            f"- Every plan the cost model can price (its plans, re-plans, and the baselines on its grid): "
            f"{stats(pairs)}.", "",
            md_table(["target", "seed", "plan", "predicted dL (nats/token)", "measured dL (calibration)",
                      "predicted / measured"], rows), ""]


def proxy_by_depth(t: dict) -> list[str]:
    """How the propagated proxy errs by depth: median measured / predicted loss increase of the fit sites of one
    run, per third of the layers (a ratio that drifts with depth means the profile's amplification is off)."""
    import numpy as np

    from rhojax.plan.cost_model import LossCurve

    fit, layers = t["loss_curve_fit"], t["layers"]
    layer = np.asarray(fit["layer"])
    measured = np.asarray(fit["delta_loss"], np.float64)
    predicted = LossCurve(**t["loss_curve"]).loss(fit["propagated_drift"])
    rows = []
    for lo, hi in ((0, layers // 3), (layers // 3, 2 * layers // 3), (2 * layers // 3, layers)):
        keep = (layer >= lo) & (layer < hi) & (measured > 0) & (predicted > 0)
        rows.append([f"{lo}-{hi - 1}", str(int(keep.sum())),
                     num(float(np.median(measured[keep] / predicted[keep]))) if keep.any() else "n/a"])
    return ["### The proxy by depth", "",
            f"Fit sites of `{t['target']}`, calibration seed {t.get('calib_seed', 0)} (single matrices measured end "
            "to end against the fitted curve applied to their propagated drift `eps * A^gamma`). A median near 1 in "
            "every third means the amplification carries errors to the output at the right rate; a ratio that "
            "falls with depth means it shrinks early errors too much, and the optimizer then spends the budget on "
            "early layers.", "",
            md_table(["layers", "fit sites", "median measured / predicted"], rows), ""]


def depth_exponent_of(t: dict) -> dict:
    """The F-test of ``gamma = 1`` restated from a run's stored fit sites (runs that did not record it)."""
    import numpy as np

    from rhojax.plan.choose import depth_fit

    fit = t.get("loss_curve_fit", {})
    if "local_error" not in fit:
        return {}
    sites = [{"layer": layer, "local_error": e, "delta_loss": d}
             for layer, e, d in zip(fit["layer"], fit["local_error"], fit["delta_loss"], strict=True)]
    return depth_fit(sites, np.asarray(t["rho"], np.float64)).to_dict()


def plan_depth_exponent(targets: list[dict]) -> list[str]:
    """Per run: the fitted depth exponent gamma and the fitted plan against the plan chosen with gamma = 1."""
    rows = []
    for t in targets:
        c = t.get("profile_plan")
        if c is None:
            continue
        if c["same_plan"]:
            versus = "the same plan"
        else:
            ci = c["fitted_vs_profile_ci"]
            versus = (f"{num(c['perplexity'])}: x{num(c['fitted_vs_profile'])} {interval(ci)}"
                      + (", within the noise" if ci[0] <= 1 <= ci[1] else ""))
        test = t.get("depth_exponent") or depth_exponent_of(t)
        rows.append([f"`{t['target']}`", str(t.get("calib_seed", 0)), f"`{t['settings'].get('amplification')}`",
                     num(test["best_gamma"], 3) if test else "", num(test["p_value"], 2) if test else "",
                     num(t["loss_curve"]["gamma"], 3), num(t["plan"]["perplexity"]), versus])
    if not rows:
        return []
    return ["### The depth exponent", "",
            "The fitted `gamma` with the F-test's p-value against `gamma = 1`, the `gamma` the plan used (the "
            "setting `amplification`: `tested` uses the fitted value where p < 0.05), and the plan against the "
            "plan the same measurements give with `gamma = 1` (the profile's amplification as is), both "
            "evaluated in the run; the ratio is plan / profile plan perplexity with its paired 95% interval.", "",
            md_table(["target", "seed", "amplification", "fitted gamma", "p (gamma = 1)", "gamma used",
                      "plan perplexity", "plan with gamma = 1: perplexity, plan / it (paired 95%)"], rows), ""]


def ablation_summary(targets: list[dict]) -> str:
    """How the plans with the fitted ``gamma`` compare with the plans with ``gamma = 1``: geometric mean ratio and
    how many are better, worse or within the noise by their paired intervals."""
    import numpy as np

    runs = [t["profile_plan"] for t in targets if not t.get("profile_plan", {"same_plan": True})["same_plan"]]
    if not runs:
        return "Every plan equals the plan with `gamma = 1`."
    ratios = np.array([r["fitted_vs_profile"] for r in runs])
    better = sum(r["fitted_vs_profile_ci"][1] < 1 for r in runs)
    worse = sum(r["fitted_vs_profile_ci"][0] > 1 for r in runs)
    return (f"Over {len(runs)} plans that differ from the `gamma = 1` plan, perplexity ratio fitted / profile from "
            f"x{num(float(ratios.min()))} to x{num(float(ratios.max()))}, geometric mean "
            f"x{num(float(np.exp(np.log(ratios).mean())))}: {worse} worse, {better} better, "
            f"{len(runs) - worse - better} within the noise (paired 95% intervals).")


def paired_accuracy_difference(a: Sequence[int], b: Sequence[int]) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same items (0/1 correctness) with a normal 95% interval."""
    import numpy as np

    from rhojax.eval.tasks import mean_stderr

    mean, stderr = mean_stderr(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return mean, mean - 1.96 * stderr, mean + 1.96 * stderr


def plan_zero_shot(runs: list[dict]) -> list[str]:
    """Zero-shot accuracy of the dense model, the plan and the best baseline per target, with the plan's
    paired accuracy difference to the baseline on the same items."""
    tasks = runs[0]["tasks"]
    rows, notes = [], []
    for z in runs:
        named = {r["name"]: r for r in z["rows"]}
        for r in z["rows"]:
            who = "**plan**" if r["name"] == "plan" else r["name"] if r["name"] == "dense" else f"`{r['name']}`"
            rows.append([f"`{z['target']}`", who, num(r["perplexity"]),
                         *(f"{100 * r['tasks'][k]['acc']:.1f} +- {100 * r['tasks'][k]['acc_stderr']:.1f}"
                           for k in tasks), f"{100 * r['mean_acc']:.1f}"])
        base = next(r for r in z["rows"] if r["name"] not in ("dense", "plan"))
        parts = []
        for k in tasks:
            mean, lo, hi = paired_accuracy_difference(named["plan"]["tasks"][k]["correct"], base["tasks"][k]["correct"])
            noise = ", within the noise" if lo <= 0 <= hi else ""
            parts.append(f"{k} {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]{noise}")
        notes.append(f"- `{z['target']}`: plan minus `{base['name']}` on the same items: {'; '.join(parts)}.")
    items = ", ".join(f"{k} {runs[0]['rows'][0]['tasks'][k]['items']}" for k in tasks)
    return ["### Zero-shot accuracy", "",
            f"Calibration seed {runs[0]['calib_seed']}; the dense model, the plan and each target's best baseline "
            f"(by perplexity); accuracy in percent +- its standard error, on the first items of each task ({items}).",
            "", md_table(["target", "model", "perplexity", *(f"{k} acc" for k in tasks), "mean acc"], rows), "",
            *notes, ""]


def plan_page(data: dict[str, dict]) -> str:
    """docs/results/plan.md from every ``plan_<model>`` data file."""
    lines = ["# Budgeted compression plans (`rhojax plan`)", "", HEADER, "",
             "What the targets, the cost model and the baselines are: [docs/plan.md](../plan.md).", ""]
    found = {name: d for name, d in data.items() if name.startswith("plan_")}
    if not found:
        return "\n".join([*lines, "No data yet: run `scripts/plan_results.py`.", ""])
    for name, d in found.items():
        s = d["settings"]
        joined = {k: ", ".join(map(str, s[k])) for k in ("methods", "sparsities", "measured_sparsities",
                                                          "rank_fractions", "bits")}
        compared = [t for t in d["targets"] if not t.get("plan_only")]
        stem = f"plan_{d['model']}_"
        variant = name.removeprefix(stem) if name.startswith(stem) else ""  # plan_<model>_<variant>: a second file
        lines += [f"## {d.get('title') or d['model'] + (f' ({variant})' if variant else '')}", "",
                  f"Settings: calibration seeds {', '.join(map(str, d.get('seeds', [s['seed']])))} (a seed draws the "
                  f"calibration windows, the perturbations and the fit sample); {num(s['calib_tokens'])} calibration "
                  f"tokens of {s['calib_text']}; evaluation on {num(s['tokens'])} tokens of {s['text']}"
                  f"{comparison_note(s['tokens'])}; loss increases from `{s['delta_source']}` ({s['fit_sites']} "
                  f"candidates measured end to end"
                  f"{' and every block removal' if 'fit_sites' in d['targets'][0] else ''}); "
                  f"grid: {joined['methods']} at {joined['sparsities']} (measured "
                  f"at {joined['measured_sparsities']}){', 2:4' if s['nm'] else ''}, ranks {joined['rank_fractions']}"
                  f" of min(in, out), RTN {joined['bits']} bits with groups of {s['group_size']}"
                  f"{', block removal' if s['removal'] else ''}. {d.get('note', '')}.", ""]
        lines += plan_seed_summary(compared)
        applied = [t for t in d["targets"] if "measured_delta_loss" in t["plan"]]
        if applied:
            lines += plan_prediction(applied)
        lines += plan_depth_exponent(compared)
        if compared and "loss_curve_fit" in compared[0]:
            lines += proxy_by_depth(compared[0])
        if d.get("zero_shot"):
            lines += plan_zero_shot(d["zero_shot"])
        lines += ["### Every run", ""]
        for t in compared:
            lines += plan_target(t)
        lines += [source_note(d, name), *earlier_runs_note(d), ""]
    for name, d in ((n, d) for n, d in data.items() if n.startswith("gamma_fitted_")):
        lines += [f"## Ablation: always fitting the depth exponent ({d['model']})", "",
                  "The same measurements and targets (with the targets planned without baselines) planned with "
                  "`amplification=fitted`: the fitted `gamma` used even where the F-test does not reject "
                  f"`gamma = 1`. {ablation_summary(d['targets'])} (To rerun: the command below with "
                  "`--set amplification=fitted`.)", "",
                  *plan_depth_exponent(d["targets"]), source_note(d, name), ""]
    return "\n".join(lines)


def quick_grids(data: dict[str, dict]) -> str:
    """docs/plan.md: the quick budget's plan against uniform Wanda on four grids (scripts/quick_plan_grids.py)."""
    d = data.get("quick_plan_grids")
    if d is None:
        return "No data yet: run `scripts/quick_plan_grids.py`."
    what = {"wide_with_removal": "Wanda 30/50/70% and block removal (the first `quick`)",
            "wide": "Wanda 30/50/70%, no removal",
            "narrow_tested": "Wanda 40/50/60%, no removal, depth exponent tested",
            "narrow": "Wanda 40/50/60%, no removal, the profile's amplification (`quick` now)"}
    rows = []
    for g in d["grids"]:
        p, removed = g["plan"], g["plan"]["removed_layers"]
        ratio, ci = g["plan_vs_best_baseline"], g["plan_vs_best_baseline_ci"]
        exponent = g.get("depth_exponent")
        used = (f" (`gamma` {num(exponent['best_gamma'])}, p = {num(exponent['p_value'])}, {exponent['sites']} sites)"
                if exponent and g["grid"] == "narrow_tested" else "")
        rows.append([what.get(g["grid"], g["grid"]) + used,
                     f"{num(p['perplexity'])} {interval(p['perplexity_ci'])}"
                     + (f", removes block(s) {removed}" if removed else ""),
                     f"{num(g['uniform_wanda']['perplexity'])}", f"x{num(ratio)} {interval(ci)}"
                     + (" within the noise" if ci[0] <= 1 <= ci[1] else "")
                     + ("" if g["best_baseline"] == "uniform_wanda" else f" (best baseline: `{g['best_baseline']}`)")])
    tokens = d["settings"][d["grids"][0]["grid"]]["tokens"]
    return "\n".join([
        f"`{d['model']}`, target `{d['target']}`, {num(tokens)} evaluation tokens{comparison_note(tokens)}; the "
        "ratio is the plan's perplexity over the best baseline's (uniform Wanda in every row) with its paired 95% "
        "interval.", "",
        md_table(["quick grid", "plan perplexity (95%)", "uniform Wanda", "plan / best baseline (paired 95%)"], rows),
        "", source_note(d, "quick_plan_grids")])


def sparsegpt_scope(data: dict[str, dict]) -> str:
    """docs/plan.md: uniform SparseGPT with the block-wide and the per-channel mask, and 2:4 (sparsegpt_scope.py)."""
    d = data.get("sparsegpt_scope")
    if d is None:
        return "No data yet: run `scripts/sparsegpt_scope.py`."
    names = {"sparsegpt": "`sparsegpt` (mask per 128-input block)", "sparsegpt_row": "`sparsegpt_row` (mask per "
             "output channel)", "sparsegpt_2:4": "2:4 SparseGPT",
             "sparsegpt_on_attention_only": "block-wide mask on q, k, v, o; per channel on the MLP",
             "sparsegpt_on_mlp_only": "block-wide mask on gate, up, down; per channel on attention"}
    q = d["rows"][0]["models"][0]["channel_sparsity"]["quantiles"]
    lo, hi = q.index(0.01), q.index(0.99)
    rows = []
    for r in d["rows"]:
        for m in r["models"]:
            ratio, ci = m["vs_sparsegpt"], m["vs_sparsegpt_ci"]
            spread = m["channel_sparsity"]["all"]
            rows.append([f"`{r['model']}`", names.get(m["method"], m["method"]),
                         f"{num(m['perplexity'])} {interval(m['perplexity_ci'])}",
                         "1" if m["method"] == "sparsegpt" else f"x{num(ratio)} {interval(ci)}"
                         + (" within the noise" if ci[0] <= 1 <= ci[1] else ""),
                         f"{num(spread[lo], 2)} / {num(spread[q.index(0.5)], 2)} / {num(spread[hi], 2)}"
                         f" (all: {num(spread[0], 2)}-{num(spread[-1], 2)})"])
    tokens = d["settings"]["tokens"]
    return "\n".join([
        f"Uniform {num(d['sparsity'])} sparsity on every block matrix (2:4 is 0.5), built with sequential calibration "
        f"on {num(d['settings']['stats_tokens'])} statistics tokens, {num(tokens)} evaluation tokens"
        f"{comparison_note(tokens)}. The ratio is paired (same windows) with its 95% interval; the channel spread "
        "is the per-output-channel sparsity over every channel of every matrix.", "",
        md_table(["model", "method", "perplexity (95%)", "vs `sparsegpt` (paired 95%)",
                  "channel sparsity 1% / median / 99% (all: min-max)"], rows),
        *scope_depth(d, names), "", source_note(d, "sparsegpt_scope")])


def scope_depth(d: dict, names: dict[str, str]) -> list[str]:
    """Lines of the depth table of :func:`sparsegpt_scope`: each model's deviation from the dense hidden states."""
    rows = []
    for r in d["rows"]:
        for m in r["models"]:
            track = m.get("deviation_by_depth")
            if track is None:
                continue
            L = len(track["all"]) - 1
            depths = [L // 4, L // 2, 3 * L // 4, L]
            rows.append([f"`{r['model']}`", names.get(m["method"], m["method"]),
                         *(f"{num(track['all'][k], 2)} ({num(track['bos'][k], 2)} / {num(track['rest'][k], 2)})"
                           for k in depths),
                         f"{num(100 * track['top_dims_share'][L // 2], 2)}%"])
    if not rows:
        return []
    return ["", "Where the models part from the dense one: the relative deviation of the hidden states "
            "`||h'_l - h_l|| / ||h_l||` at a quarter, half, three quarters and all of the depth (in brackets: at "
            "the first token, BOS, and at the others), and the share of the squared deviation at half depth on the "
            "dense model's 8 largest residual dimensions there.", "",
            md_table(["model", "method", "1/4 of the depth", "1/2", "3/4", "output", "on the 8 largest dims"], rows)]
