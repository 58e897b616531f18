"""SparseGPT's mask scope: the mask chosen over each 128-input block (the paper's) or per output channel.

Builds three uniform models at the same budget with sequential calibration, as the planner's baselines
are built (``rhojax.plan.baselines``): unstructured SparseGPT at ``--sparsity`` with the block-wide mask
(``sparsegpt``) and with the mask per output channel (``sparsegpt_row``), and 2:4 SparseGPT. For each it
records the evaluation perplexity, its paired ratio to the block-wide model, and how unevenly the mask
spreads over output channels (quantiles of the per-channel sparsity, over every channel of every matrix, and
per kind). Two mixed models locate the damage: the block-wide mask on the attention matrices only (q, k, v,
o; per-channel on the MLP) and on the MLP matrices only. One run folder per model (``WORK/MODEL``), one part
per model built, so a stopped run resumes.

    .venv/bin/python scripts/sparsegpt_scope.py --models smollm2-135m,qwen2.5-coder-0.5b \\
        --data docs/results/data/sparsegpt_scope.json --work results/sparsegpt_scope
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from rhojax.commands.common import progress
from rhojax.io.resolve import load_model
from rhojax.models.sites import get_site
from rhojax.plan.actions import Plan, compress_plan, nm, prune, uniform_plan
from rhojax.plan.study import PlanSettings, PlanStudy
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder

QUANTILES = (0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0)
#: The fields of :class:`PlanSettings` this study depends on (windows, evaluation, intervals): its run identity.
USED_SETTINGS = ("text", "tokens", "seq_len", "calib_text", "calib_tokens", "stats_tokens", "calib_seed", "seed",
                 "batch_size", "boots")
#: The kinds given the block-wide mask in each mixed model (the others get the per-channel mask).
ATTENTION_OR_MLP = {"attention": ("q", "k", "v", "o"), "mlp": ("gate", "up", "down")}


def channel_sparsity(config, params: dict) -> dict[str, np.ndarray]:
    """Per kind, the fraction of zero weights in each output channel (column of ``w`` (in, out)), all layers."""
    out: dict[str, list[np.ndarray]] = {}
    for layer, kind in config.sites:
        w = np.asarray(get_site(params, (layer, kind)))
        out.setdefault(kind, []).append((w == 0).mean(axis=0))
    return {kind: np.concatenate(v) for kind, v in out.items()}


def spread(per_kind: dict[str, np.ndarray]) -> dict:
    """Quantiles of the per-channel sparsity over every channel, and per kind."""
    every = np.concatenate(list(per_kind.values()))
    return {"quantiles": list(QUANTILES), "all": np.quantile(every, QUANTILES).tolist(),
            "by_kind": {k: np.quantile(v, QUANTILES).tolist() for k, v in per_kind.items()}}


def compare(model, settings: PlanSettings, sparsity: float, work: Path) -> dict:
    """The uniform and mixed models of ``model``: perplexity, paired ratio to block-wide SparseGPT, channel spread."""
    c = model.config
    run = RunFolder.open(work / model.spec, {"model": model.spec, "sparsity": sparsity,
                                             **{k: getattr(settings, k) for k in USED_SETTINGS}})
    study = PlanStudy(model, run, settings, progress())
    plans: dict[str, Plan] = {
        "sparsegpt": uniform_plan(c, prune("sparsegpt", sparsity)),
        "sparsegpt_row": uniform_plan(c, prune("sparsegpt_row", sparsity)),
        "sparsegpt_2:4": uniform_plan(c, nm("sparsegpt", (2, 4))),
        **{f"sparsegpt_on_{part}_only": Plan((), {
            (layer, kind): prune("sparsegpt" if kind in kinds else "sparsegpt_row", sparsity)
            for layer, kind in c.sites}) for part, kinds in ATTENTION_OR_MLP.items()},
    }

    def build(plan: Plan) -> dict:
        params = compress_plan(c, model.params, plan, study.statistics, batch_size=settings.batch_size)
        return {**study.score(c, params), "channel_sparsity": spread(channel_sparsity(c, params))}

    dense = study.dense()
    built = {name: run.part(f"uniform_{name.replace(':', '_')}", lambda p=plan: build(p))
             for name, plan in plans.items()}
    models = []
    for name, row in built.items():
        ratio, ci = study.paired_ratio(row, built["sparsegpt"])
        scored = study.scored(row, dense)
        models.append({"method": name, **{k: scored[k] for k in ("perplexity", "perplexity_ci", "ratio", "ratio_ci")},
                       "vs_sparsegpt": ratio, "vs_sparsegpt_ci": ci, "channel_sparsity": row["channel_sparsity"]})
    return {"model": model.spec, "dense_perplexity": study.scored(dense, dense)["perplexity"], "models": models}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--calib-tokens", type=int, default=2048)
    parser.add_argument("--stats-tokens", type=int, default=8192)
    parser.add_argument("--tokens", type=int, default=16384)
    args = parser.parse_args()
    settings = PlanSettings(apply=True, calib_tokens=args.calib_tokens, stats_tokens=args.stats_tokens,
                            tokens=args.tokens)
    started, code, rows = time.perf_counter(), provenance(), []  # the code the run started with
    for spec in [m for m in args.models.split(",") if m]:
        rows.append(compare(load_model(spec), settings, args.sparsity, args.work))
        write_json(args.data, {"provenance": code, "sparsity": args.sparsity,
                               "settings": {k: getattr(settings, k) for k in USED_SETTINGS},
                               "wall_seconds": time.perf_counter() - started, "rows": rows})
        print(f"finished {spec}: wrote {args.data}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
