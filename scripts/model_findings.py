"""Findings on one packaged model: its per-matrix sensitivity map (magnitude and Wanda at 50%, with the
CFI and its all-at-once yardstick) and its contraction profile, as a data file for docs/results.

The settings are the ``quick`` budget's (:data:`rhojax.analysis.BUDGETS`), the sweep run once per method
(Wanda, then magnitude), so that every model is measured alike. Each study runs in its own run folder under
``--work`` and resumes after a kill; the wall time of every invocation is kept in ``walls.json`` there
(updated every 30 s, so an interrupted invocation still counts). Writes
``docs/results/data/findings_<model>.json`` from every finished study's folder, keeping the studies the file
already holds that have no folder here (measured earlier, maybe on another machine): per study its compact
section (as in the main job's report), settings, provenance (command, commit, versions, machine) and wall
time over its invocations.

    .venv/bin/python scripts/model_findings.py gemma3-270m        # Wanda sweep, magnitude sweep, profile
    .venv/bin/python scripts/model_findings.py qwen2.5-coder-1.5b --studies sweep_wanda
    .venv/bin/python scripts/model_findings.py gemma3-270m --studies depth   # rho vs BI removal
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path

from rhojax.analysis import BUDGETS
from rhojax.analysis.sections import depth_section, profile_section, sensitivity_section
from rhojax.depth.study import run_depth_study
from rhojax.io.resolve import load_model
from rhojax.progress import LineProgress
from rhojax.propagation.study import run_profile_study
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder
from rhojax.sensitivity.study import run_sweep_study

DATA = Path("docs/results/data")
#: Study name -> (run function, settings from the quick budget); one sweep per method, so that each
#: method's map is complete (and has its CFI) without waiting for the other's.
METHODS = ("wanda", "magnitude")
#: The compact section of each study's summary kept in the data file (as the main job's report keeps).
SECTIONS = {"sweep": sensitivity_section, "profile": profile_section, "depth": depth_section}


def study_settings(tokens: int | None) -> dict:
    """The quick budget's profile and depth study, and its sweep with one method per study (``tokens``
    overrides the sweep's). The depth study runs its layer-removal rows only (rho vs Block Influence): the
    data file keeps those (:func:`depth_section`), so its allocation cells would be computed for nothing."""
    quick = BUDGETS["quick"]
    sweep = quick.sensitivity if tokens is None else dataclasses.replace(quick.sensitivity, tokens=tokens)
    depth = dataclasses.replace(quick.depth, sparsities=())
    return {"profile": (run_profile_study, quick.profile), "depth": (run_depth_study, depth),
            **{f"sweep_{m}": (run_sweep_study, dataclasses.replace(sweep, methods=(m,))) for m in METHODS}}


class WallClock:
    """Seconds of this invocation, appended to ``path`` (a list of invocations) and refreshed every 30 s."""

    def __init__(self, path: Path, study: str):
        self.path, self.study, self.start = path, study, time.perf_counter()
        self.entries = json.loads(path.read_text()) if path.exists() else []
        self.entry = {"study": study, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "load_average_at_start": list(os.getloadavg()), "seconds": 0.0, "finished": False}
        self.entries.append(self.entry)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def _write(self) -> None:
        self.entry["seconds"] = round(time.perf_counter() - self.start, 1)
        write_json(self.path, self.entries)

    def _tick(self) -> None:
        while not self.stop.wait(30):
            self._write()

    def __enter__(self) -> WallClock:
        self._write()
        self.thread.start()
        return self

    def __exit__(self, kind, *_) -> None:
        self.stop.set()
        self.thread.join()
        self.entry["finished"] = kind is None
        self._write()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--studies", default="sweep_wanda,sweep_magnitude,profile",
                        help="Comma-separated: sweep_wanda, sweep_magnitude, profile, depth.")
    parser.add_argument("--tokens", type=int, default=None, help="Sweep evaluation tokens (default: quick's).")
    parser.add_argument("--work", default="results/findings")
    parser.add_argument("--collect-only", action="store_true", help="Only (re)write the data file from the folders.")
    args = parser.parse_args()
    settings, code = study_settings(args.tokens), provenance()  # the code the run started with
    work = Path(args.work) / args.model
    if not args.collect_only:
        model = load_model(args.model)
        for study in [s for s in args.studies.split(",") if s]:
            study_run, study_settings_ = settings[study]
            run = RunFolder.for_study(work / study, model, study_settings_)
            with WallClock(work / study / "walls.json", study):
                summary = study_run(model, run, study_settings_, progress=LineProgress(sys.stderr))
            run.write("summary.json", {**summary, "provenance": code})
    out = DATA / f"findings_{args.model}.json"
    write_json(out, collect(args.model, work, json.loads(out.read_text()) if out.exists() else None))
    print(f"wrote {out}", file=sys.stderr)


def collect(model: str, work: Path, kept: dict | None = None) -> dict:
    """The data file of ``model``: the compact section of every finished study under ``work`` (the full
    summaries stay there), with each study's provenance, settings and wall time over its invocations.
    Studies of ``kept`` (the data file written before, maybe on another machine) that have no finished
    folder under ``work`` are kept as they were."""
    studies = dict((kept or {}).get("studies", {}))
    for folder in sorted(p.parent for p in work.glob("*/summary.json")):
        summary = json.loads((folder / "summary.json").read_text())
        walls = json.loads((folder / "walls.json").read_text())
        section = SECTIONS[folder.name.split("_")[0]](summary)
        studies[folder.name] = {**section, "settings": summary["settings"], "provenance": summary["provenance"],
                                "invocations": walls, "wall_seconds": round(sum(w["seconds"] for w in walls), 1)}
    if not studies:
        raise SystemExit(f"no finished study under {work} and none in the data file")
    first = min(studies.values(), key=lambda s: s["invocations"][0]["started"])
    return {
        "provenance": first["provenance"],
        "model": model,
        "seed": first["settings"]["seed"],
        "settings": {name: study["settings"] for name, study in studies.items()},
        "wall_seconds": round(sum(s["wall_seconds"] for s in studies.values()), 1),
        "note": "CPU runs at nice 19 on a shared 2-core machine while other jobs ran; wall times include that "
                "contention (the load average at the start of each invocation is recorded)",
        "studies": studies,
    }


if __name__ == "__main__":
    main()
