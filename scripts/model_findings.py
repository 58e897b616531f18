"""Findings on one packaged model: its per-matrix sensitivity map (magnitude and Wanda at 50%, with the
CFI and its all-at-once yardstick) and its contraction profile, as a data file for docs/results.

The settings are the ``quick`` budget's (:data:`rhojax.analysis.BUDGETS`), the sweep run once per method
(Wanda, then magnitude), so that every model is measured alike. Each study runs in its own run folder under
``--work`` and resumes after a kill; the wall time of every invocation is kept in ``walls.json`` there
(updated every 30 s, so an interrupted invocation still counts). Writes
``docs/results/data/findings_<model>.json`` (provenance, settings, seed, machine, wall times, summaries).

    .venv/bin/python scripts/model_findings.py gemma3-270m        # Wanda sweep, magnitude sweep, profile
    .venv/bin/python scripts/model_findings.py qwen2.5-coder-1.5b --studies sweep_wanda
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
from rhojax.io.resolve import load_model
from rhojax.progress import LineProgress
from rhojax.propagation.study import run_profile_study
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder
from rhojax.sensitivity.study import run_sweep_study
from rhojax.settings import run_identity

DATA = Path("docs/results/data")
#: Study name -> (run function, settings from the quick budget); one sweep per method, so that each
#: method's map is complete (and has its CFI) without waiting for the other's.
METHODS = ("wanda", "magnitude")


def study_settings(tokens: int | None) -> dict:
    """The quick budget's profile, and its sweep with one method per study (``tokens`` overrides the sweep's)."""
    quick = BUDGETS["quick"]
    sweep = quick.sensitivity if tokens is None else dataclasses.replace(quick.sensitivity, tokens=tokens)
    return {"profile": (run_profile_study, quick.profile),
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
                        help="Comma-separated: sweep_wanda, sweep_magnitude, profile.")
    parser.add_argument("--tokens", type=int, default=None, help="Sweep evaluation tokens (default: quick's).")
    parser.add_argument("--work", default="results/findings")
    args = parser.parse_args()
    studies = [s for s in args.studies.split(",") if s]
    settings = study_settings(args.tokens)
    work = Path(args.work) / args.model
    model = load_model(args.model)
    summaries = {}
    for study in studies:
        study_run, study_settings_ = settings[study]
        run = RunFolder.open(work / study, run_identity(model, study_settings_))
        with WallClock(work / study / "walls.json", study):
            summary = study_run(model, run, study_settings_, progress=LineProgress(sys.stderr))
        summary = {**summary, "provenance": provenance()}
        summaries[study] = json.loads(run.write("summary.json", summary).read_text())
    out = DATA / f"findings_{args.model}.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    walls = {s: json.loads((work / s / "walls.json").read_text()) for s in studies}
    write_json(out, {
        "provenance": provenance(),
        "model": args.model,
        "config": {"layers": model.config.num_layers, "hidden_size": model.config.hidden_size,
                   "family": model.config.family, "site_kinds": list(model.config.site_kinds)},
        "settings": {**previous.get("settings", {}), **{s: dataclasses.asdict(settings[s][1]) for s in studies}},
        "seed": settings["profile"][1].seed,
        "invocations": {**previous.get("invocations", {}), **walls},
        "wall_seconds": {**previous.get("wall_seconds", {}),
                         **{s: round(sum(w["seconds"] for w in walls[s]), 1) for s in studies}},
        "note": "CPU run at nice 19 on a shared 2-core machine while other jobs ran; wall times include that "
                "contention (load averages at the start of each invocation are recorded)",
        **{k: v for k, v in previous.items() if k in settings},
        **summaries,
    })
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
