"""Why the ``quick`` budget plans as it does: its plan against uniform Wanda on four grids, into one data file.

The plan step of ``rhojax analyze --budget quick`` measures 512 tokens, so its propagated proxy is noisy. This
script runs that step (``params=0.5``, Wanda only, 2,048 evaluation tokens) on four grids, each a resumable run
folder ``WORK/NAME`` (grids with the same measurement settings share ``WORK/measure_DIGEST``), and writes the
plans' perplexities and their paired ratio to uniform Wanda:

- ``wide_with_removal``: Wanda 30/50/70% and block removal, baselines uniform Wanda, OWL and Block Influence
  (the first ``quick``);
- ``wide``: the same grid without removal, uniform Wanda only;
- ``narrow_tested``: Wanda 40/50/60% without removal, uniform Wanda only, the depth exponent of the amplification
  fitted where the F-test rejects ``gamma = 1`` (``amplification="tested"``, the planner's default);
- ``narrow``: the same with the profile's amplification as is (``quick`` now).

    .venv/bin/python scripts/quick_plan_grids.py --data docs/results/data/quick_plan_grids.json --work results/qp
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from rhojax.analysis.budgets import BUDGETS
from rhojax.commands.common import progress
from rhojax.io.resolve import load_model
from rhojax.plan import PlanSettings, run_plan_study
from rhojax.plan.study import measurement_settings
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder

WIDE_WITH_REMOVAL = dataclasses.replace(
    BUDGETS["quick"].plan, sparsities=(0.3, 0.5, 0.7), measured_sparsities=(0.3, 0.7), removal=True,
    baselines=("uniform_wanda", "owl_wanda", "bi_removal"))
GRIDS: dict[str, PlanSettings] = {
    "wide_with_removal": WIDE_WITH_REMOVAL,
    "wide": dataclasses.replace(WIDE_WITH_REMOVAL, removal=False, baselines=("uniform_wanda",)),
    "narrow_tested": dataclasses.replace(BUDGETS["quick"].plan, amplification="tested"),
    "narrow": BUDGETS["quick"].plan,
}


def measurements_folder(work: Path, spec: dict, settings: PlanSettings) -> RunFolder:
    """The run folder of the target-independent measurements, shared by grids that measure the same."""
    measured = {"model": spec, **measurement_settings(settings)}
    digest = hashlib.sha256(json.dumps(measured, sort_keys=True, default=list).encode()).hexdigest()[:12]
    return RunFolder.open(work / f"measure_{digest}", measured)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    model = load_model(args.model)
    started, rows, code = time.perf_counter(), [], provenance()  # the code the run started with
    for name, settings in GRIDS.items():
        t0 = time.perf_counter()
        s = run_plan_study(model, RunFolder.open(args.work / name, dataclasses.asdict(settings)), settings,
                           progress=progress(), measurements=measurements_folder(args.work, model.spec, settings))
        uniform = next(b for b in s["baselines"] if b["name"] == "uniform_wanda")
        rows.append({"grid": name, "wall_seconds": time.perf_counter() - t0,
                     "plan": {k: s["plan"][k] for k in ("perplexity", "perplexity_ci", "action_counts",
                                                        "removed_layers", "predicted_ratio")},
                     "depth_exponent": s.get("depth_exponent"),
                     "uniform_wanda": {k: uniform[k] for k in ("perplexity", "perplexity_ci")},
                     "best_baseline": s["best_baseline"], "plan_vs_best_baseline": s["plan_vs_best_baseline"],
                     "plan_vs_best_baseline_ci": s["plan_vs_best_baseline_ci"]})
        write_json(args.data, {"model": model.spec, "provenance": code, "target": settings.target,
                               "settings": {g: dataclasses.asdict(v) for g, v in GRIDS.items()},
                               "wall_seconds": time.perf_counter() - started, "grids": rows})
        print(f"finished {name}: wrote {args.data}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
