"""README's table of the main job's budgets, with the measured time of each."""

from __future__ import annotations

import dataclasses

from .common import md_table, num

#: The time goal of the default budget, in minutes.
QUICK_GOAL_MINUTES = 15


def same_settings(recorded: dict, current: dict, defaults: dict) -> bool:
    """``recorded == current``, where a field the record lacks counts as equal when ``current`` has it at its
    default (a setting added since then, whose default keeps the behaviour the record measured)."""
    if recorded.keys() - current.keys():
        return False
    for key, value in current.items():
        if key not in recorded:
            if value != defaults.get(key):
                return False
        elif isinstance(value, dict) and isinstance(recorded[key], dict):
            if not same_settings(recorded[key], value, defaults.get(key) or {}):
                return False
        elif recorded[key] != value:
            return False
    return True


def budgets(data: dict[str, dict]) -> str:
    """README's table of the main job's budgets: what each runs and its measured time on this machine."""
    from rhojax.analysis import BUDGETS, AnalysisSettings
    from rhojax.runs import as_settings
    from rhojax.settings import without_execution

    rows, defaults = [], without_execution(as_settings(dataclasses.asdict(AnalysisSettings())))
    for name, b in BUDGETS.items():
        measured = previous = data.get(f"analyze_smollm2-135m_{name}")
        same = measured is not None and same_settings(without_execution(measured["settings"]),
                                                      without_execution(as_settings(dataclasses.asdict(b))), defaults)
        if not same:
            measured = None  # measured with other settings than the budget has now
        if measured is not None:
            m = measured["provenance"]["machine"]
            time = (f"{num(measured['timings']['total_seconds'] / 60, 3)} min on {m['cores']} cores "
                    f"(`docs/results/data/analyze_smollm2-135m_{name}.json`)")
        else:
            time = "not measured on this machine with these settings"
        what = (f"ppl {num(b.perplexity.tokens)} tokens; profile {num(b.profile.tokens)} tokens, K = "
                f"{b.profile.samples}; sweep {'+'.join(b.sensitivity.methods)} on "
                f"{'layers ' + ','.join(map(str, b.sensitivity.layers)) if b.sensitivity.layers else 'every matrix'}, "
                f"{num(b.sensitivity.tokens)} tokens; tasks {','.join(b.eval.tasks)} "
                f"({b.eval.limit or 'all'} items); bounds plan {b.bounds.plan or 'none'} + sites "
                f"{b.bounds.site_plan or 'none'}; depth k = {','.join(map(str, b.depth.ks))} x "
                f"{len(b.depth.criteria)} criteria, {len(b.depth.schedules)} schedules at "
                f"{','.join(f'{x:.0%}' for x in b.depth.sparsities)}, {num(b.depth.tokens)} tokens; structure "
                f"{num(b.structure.tokens)} tokens; plan {b.plan.target} ({'+'.join(b.plan.methods)}, "
                f"{len(b.plan.baselines)} baseline{'s' if len(b.plan.baselines) != 1 else ''}, "
                f"{num(b.plan.tokens)} tokens)")
        rows.append([f"`{name}`", what, time])
        if name == "quick":
            goal = QUICK_GOAL_MINUTES
            if measured is None:
                verdict = "it has not been measured with the settings it has now" + (
                    "" if previous is None else f" (the last measured run, with other settings, took "
                    f"{num(previous['timings']['total_seconds'] / 60, 3)} min)")
            else:
                minutes = measured["timings"]["total_seconds"] / 60
                verdict = (f"the measured run took {num(minutes, 3)} min, "
                           + ("within the goal" if minutes <= goal else f"{num(minutes - goal, 2)} min over it"))
            note = (f"The goal for `quick` is at most {goal} minutes on a 2-core CPU, compile and load included: "
                    f"{verdict}.")
    untimed = [f"`{name}`" for name, row in zip(BUDGETS, rows, strict=True)
               if name != "quick" and row[2].startswith("not measured")]
    if untimed:
        note += f" Not timed on this machine: {', '.join(untimed)}."
    note += " A budget is timed by `.venv/bin/python benchmarks/bench_analyze.py --budget NAME` on an idle machine."
    return md_table(["budget", "what it runs", "time (compile and load included)"], rows) + "\n\n" + note
