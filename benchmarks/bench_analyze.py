"""The main job's time on this machine: ``rhojax analyze`` in a fresh folder, its report kept as data.

Runs ``rhojax analyze MODEL --budget BUDGET --out results/<model>-<budget>`` in a subprocess from a
clean folder (nothing to resume), then copies the run's ``report.json`` (settings, provenance and
per-step timings, model load included) to ``docs/results/data/analyze_<model>_<budget>.json``, which
``scripts/render_results.py`` renders into the README's budget table and the results pages. Run it
from a committed tree on an otherwise idle machine: the time is the claim.

    .venv/bin/python benchmarks/bench_analyze.py [--model smollm2-135m] [--budget quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--budget", default="quick")
    args = parser.parse_args(argv)
    out = Path("results") / f"{args.model}-{args.budget}"
    shutil.rmtree(ROOT / out, ignore_errors=True)
    rhojax = Path(sys.executable).parent / "rhojax"
    subprocess.run([str(rhojax), "analyze", args.model, "--budget", args.budget, "--out", str(out)],
                   cwd=ROOT, check=True)
    data = ROOT / "docs" / "results" / "data" / f"analyze_{args.model}_{args.budget}.json"
    shutil.copyfile(ROOT / out / "report.json", data)
    print(f"wrote {data.relative_to(ROOT)}; now run scripts/render_results.py")


if __name__ == "__main__":
    main()
