"""The plan result: ``rhojax plan --apply`` on one model at several targets, plan vs baselines, into one data file.

The target-independent measurements (dense signals, single-site measurements) are computed once in
``WORK/measure`` and shared by every target; each target is its own resumable run folder ``WORK/TARGET``.
The data file is rewritten after every finished target (with provenance, settings and wall time), so a
run stopped early still leaves the targets it finished. Render the page with scripts/render_results.py.

    .venv/bin/python scripts/plan_results.py --model smollm2-135m --data docs/results/data/plan_smollm2.json \\
        --work results/plan_smollm2 --targets params=0.5,flops=0.6,bytes=0.15
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from rhojax.commands.common import open_run, progress
from rhojax.io.resolve import load_model
from rhojax.plan.study import PlanSettings, measurement_settings, run_plan_study
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
    parser.add_argument("--seed", type=int, default=0)
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
                        tokens=args.tokens, seed=args.seed, apply=True, **values)
    model = load_model(args.model)
    measurements = RunFolder.open(args.work / "measure", {"model": model.spec, **measurement_settings(base)})
    started = time.perf_counter()
    results = []
    for target in args.targets.split(","):
        settings = dataclasses.replace(base, target=target)
        run = open_run(args.work / target, model, settings)
        t0 = time.perf_counter()
        summary = run_plan_study(model, run, settings, progress=progress(), measurements=measurements)
        results.append({"target": target, "wall_seconds": time.perf_counter() - t0, **summary})
        write_json(args.data, {
            "model": model.spec, "provenance": provenance(), "settings": dataclasses.asdict(base),
            "note": "CPU run at nice 19 on a shared 2-core machine while other jobs ran; one calibration seed",
            "load_average": os.getloadavg(), "wall_seconds": time.perf_counter() - started, "targets": results,
        })
        print(f"finished {target}: wrote {args.data}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
