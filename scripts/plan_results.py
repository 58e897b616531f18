"""The plan result: ``rhojax plan --apply`` on one model at several targets, plan vs baselines, into one data file.

Each calibration seed (``--seeds``; it sets both ``seed`` and ``calib_seed``: another calibration sample,
other perturbations and another fit-site sample) has its own folder ``WORK/seedN``. In it the
target-independent measurements (dense signals, single-site measurements) are computed once in
``measure`` and shared by every target; each target is its own resumable run folder. ``--plan-only``
targets are planned and verified without baselines or closed loop (more budgets for the predicted-vs-measured
check). Order: the first seed's targets, its ``--plan-only`` targets, then the other seeds' targets, target by
target (every seed of the first target before the second target); the closed loop (``--set closed_loop=true``)
runs on the first seed only. ``--tasks`` then scores zero-shot accuracy on the first seed's targets for the
dense model, the plan and that target's best baseline (folders ``TARGET_tasks``: their perplexities are
evaluated again, the single-site measurements are reused).
The data file is rewritten after every finished target (with provenance, settings and wall time), so a
run stopped early still leaves the targets it finished. A run whose ``--data`` file already exists, for the
same model and settings, keeps the (target, seed) results the file holds and runs only the others: more
seeds can be added by later runs, on other machines; each kept result carries the provenance of the run that
made it. Render the page with scripts/render_results.py.

    .venv/bin/python scripts/plan_results.py --model smollm2-135m --data docs/results/data/plan_smollm2.json \\
        --work results/plan_smollm2 --targets params=0.5,flops=0.6,bytes=0.15 --seeds 0,1,2 \\
        --plan-only params=0.4,params=0.6,params=0.7,flops=0.5,flops=0.7,bytes=0.2,bytes=0.25
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from rhojax.commands.common import open_run, progress
from rhojax.io.resolve import load_model
from rhojax.plan import PlanSettings, run_plan_study
from rhojax.plan.study import measurement_settings
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--targets", default="params=0.5,flops=0.6,bytes=0.15")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--delta-source", default="propagated")
    parser.add_argument("--fit-sites", type=int, default=48)
    parser.add_argument("--calib-tokens", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--seeds", default="0", help="Calibration seeds, comma-separated (seed and calib_seed).")
    parser.add_argument("--plan-only", default="", help="More targets, planned and verified without baselines "
                        "(first seed only, run after its targets and before the other seeds').")
    parser.add_argument("--later-seed-baselines", default="", help="Baselines of the seeds after the first, "
                        "comma-separated (default: the same as the first seed's); the seed intervals are then "
                        "over these baselines only.")
    parser.add_argument("--tasks", default="", help="Zero-shot tasks scored last on the first seed's targets "
                        "(dense, plan, best baseline), comma-separated, e.g. arc_easy,piqa.")
    parser.add_argument("--task-limit", type=int, default=200, help="First N items of each task.")
    parser.add_argument("--note", default="CPU run on a shared 2-core machine while other jobs ran",
                        help="How the machine was used during the run (written into the data file).")
    parser.add_argument("--title", default="", help="Heading of this data's section on the results page "
                        "(default: the model), for a second data file of one model.")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="Any other PlanSettings field, e.g. --set methods=wanda --set nm=false (tuples: a,b).")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    fields = {f.name: f for f in dataclasses.fields(PlanSettings)}
    values = {}
    for name, text in overrides.items():
        default = fields[name].default
        if isinstance(default, tuple):
            element = type(default[0]) if default else str
            values[name] = tuple(element(v) for v in text.split(",") if v)
        elif isinstance(default, bool):
            values[name] = text.lower() in ("1", "true", "yes")
        else:
            values[name] = type(default)(text)
    base = PlanSettings(delta_source=args.delta_source, fit_sites=args.fit_sites, calib_tokens=args.calib_tokens,
                        tokens=args.tokens, apply=True, **values)
    model = load_model(args.model)
    seeds = [int(v) for v in args.seeds.split(",") if v]
    targets = [t for t in args.targets.split(",") if t]
    jobs = [(seeds[0], target, base.baselines) for target in targets]
    jobs += [(seeds[0], target, ()) for target in args.plan_only.split(",") if target]
    later = tuple(v for v in args.later_seed_baselines.split(",") if v) or base.baselines
    jobs += [(seed, target, later) for target in targets for seed in seeds[1:]]  # a run cut short has all seeds
    started, code = time.perf_counter(), provenance()  # the code this run started with, not a later checkout's
    earlier = kept_data(args.data, model.spec, dataclasses.asdict(base))
    results, zero_shot = earlier.get("targets", []), earlier.get("zero_shot", [])
    done = {(r["target"], r["calib_seed"], r["plan_only"]) for r in results}
    jobs = [(seed, target, b) for seed, target, b in jobs if (target, seed, not b) not in done]
    seeds += sorted({r["calib_seed"] for r in results} - set(seeds))

    def study(settings: PlanSettings, folder: str) -> tuple[dict, float]:
        work = args.work / f"seed{settings.seed}"
        measurements = RunFolder.open(work / "measure", {"model": model.spec, **measurement_settings(settings)})
        t0 = time.perf_counter()
        summary = run_plan_study(model, open_run(work / folder, model, settings), settings, progress=progress(),
                                 measurements=measurements)
        return summary, time.perf_counter() - t0

    def save(what: str) -> None:
        write_json(args.data, {
            "model": model.spec, **({"title": args.title} if args.title else {}), "provenance": code,
            "settings": dataclasses.asdict(base), "seeds": seeds,
            "note": args.note, "load_average": os.getloadavg(),
            "wall_seconds": earlier.get("wall_seconds", 0.0) + time.perf_counter() - started,
            "targets": results, **({"zero_shot": zero_shot} if zero_shot else {}),
        })
        print(f"finished {what}: wrote {args.data}", flush=True)

    for seed, target, baselines in jobs:
        settings = dataclasses.replace(base, target=target, seed=seed, calib_seed=seed, baselines=baselines,
                                       closed_loop=base.closed_loop and bool(baselines) and seed == seeds[0])
        summary, seconds = study(settings, target if baselines else f"{target}_plan_only")
        results.append({"target": target, "calib_seed": seed, "plan_only": not baselines, "wall_seconds": seconds,
                        "provenance": code, **summary})
        save(f"{target} (seed {seed})")
    tasks = tuple(v for v in args.tasks.split(",") if v)
    scored = {z["target"] for z in zero_shot}
    for t in (r for r in results if tasks and r["calib_seed"] == seeds[0] and "best_baseline" in r
              and r["target"] not in scored):
        settings = dataclasses.replace(base, target=t["target"], seed=seeds[0], calib_seed=seeds[0],
                                       baselines=(t["best_baseline"],), closed_loop=False, tasks=tasks,
                                       task_limit=args.task_limit)
        summary, seconds = study(settings, f"{t['target']}_tasks")
        zero_shot.append({"target": t["target"], "calib_seed": seeds[0], "tasks": list(tasks),
                          "task_limit": args.task_limit, "wall_seconds": seconds,
                          "rows": [{"name": name, **{k: r[k] for k in ("perplexity", "tasks", "mean_acc")}}
                                   for name, r in (("dense", summary["dense"]), ("plan", summary["plan"]),
                                                   *((b["name"], b) for b in summary["baselines"]))]})
        save(f"zero-shot tasks at {t['target']}")
    return 0


def kept_data(path: Path, model: str, settings: dict) -> dict:
    """What an existing data file holds for this model and these settings: its target results (each with the
    provenance of the run that made it), zero-shot rows and wall time; nothing for a new file. A setting the
    file does not name (a field added since) counts as equal."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    settings = json.loads(json.dumps(settings))  # tuples as the file stores them
    differ = sorted(k for k in settings.keys() | data["settings"].keys()
                    if data["settings"].get(k, settings.get(k)) != settings.get(k))
    if data["model"] != model or differ:
        raise SystemExit(f"{path} holds results of {data['model']} with other settings "
                         f"({', '.join(differ) or 'model'}): give another --data, or the same settings to add to it")
    data["targets"] = [{**r, "provenance": r.get("provenance", data["provenance"])} for r in data["targets"]]
    print(f"kept {len(data['targets'])} results from {path}", flush=True)
    return data


if __name__ == "__main__":
    sys.exit(main())
