"""SparseGPT's mask scope: the mask chosen over each 128-input block (the paper's) or per output channel.

Builds three uniform models at the same budget with sequential calibration, as the planner's baselines
are built (``rhojax.plan.baselines``): unstructured SparseGPT at ``--sparsity`` with the block-wide mask
(``sparsegpt``) and with the mask per output channel (``sparsegpt_row``), and 2:4 SparseGPT. For each it
records the evaluation perplexity, its paired ratio to the block-wide model, and how unevenly the mask
spreads over output channels (quantiles of the per-channel sparsity, over every channel of every matrix, and
per kind). Two mixed models locate the damage: the block-wide mask on the attention matrices only (q, k, v,
o; per-channel on the MLP) and on the MLP matrices only. One run folder per model (``WORK/MODEL``), one part
per model built, so a stopped run resumes.

Where the models part from the dense one: for each model, the relative deviation of its hidden states from
the dense model's, ``||h'_l - h_l|| / ||h_l||`` at every depth ``l`` (evaluation windows), split into the
first token (BOS, where the large "attention sink" activations sit) and the others, and the share of the
deviation's energy on the dense model's ``TOP_DIMS`` largest residual dimensions at that depth (mean square
over every token).

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
from rhojax.data.windows import corpus_windows
from rhojax.io.resolve import load_model
from rhojax.models.sites import get_site
from rhojax.plan import PlanSettings
from rhojax.plan.actions import Plan, compress_plan, nm, prune, uniform_plan
from rhojax.plan.study import PlanStudy
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import RunFolder
from rhojax.sharding import clean_states

QUANTILES = (0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0)
#: The fields of :class:`PlanSettings` this study depends on (windows, evaluation, intervals): its run identity.
USED_SETTINGS = ("text", "tokens", "seq_len", "calib_text", "calib_tokens", "stats_tokens", "calib_seed", "seed",
                 "batch_size", "boots")
#: The kinds given the block-wide mask in each mixed model (the others get the per-channel mask).
ATTENTION_OR_MLP = {"attention": ("q", "k", "v", "o"), "mlp": ("gate", "up", "down")}
#: Residual dimensions counted as the dense model's largest at each depth.
TOP_DIMS = 8
#: Evaluation tokens of the depth track (512-token windows).
TRACK_TOKENS = 2048


def deviation_by_depth(dense: np.ndarray, compressed: np.ndarray) -> dict:
    """Relative deviation of ``compressed`` from ``dense`` hidden states (L + 1, N, T, D) at each depth: over
    every token, at the first token (BOS) and the others, and the share of the squared deviation on the
    dense model's ``TOP_DIMS`` largest dimensions (by mean square over tokens) at that depth."""
    d2, h2 = (compressed - dense) ** 2, dense**2
    rel = lambda num, den: np.sqrt(num.sum(axis=(1, 2, 3)) / den.sum(axis=(1, 2, 3)))  # noqa: E731
    top = np.argsort(h2.mean(axis=(1, 2)), axis=-1)[:, -TOP_DIMS:]  # (L + 1, TOP_DIMS)
    on_top = np.take_along_axis(d2.sum(axis=(1, 2)), top, axis=-1).sum(axis=-1)
    return {"all": rel(d2, h2).tolist(), "bos": rel(d2[:, :, :1], h2[:, :, :1]).tolist(),
            "rest": rel(d2[:, :, 1:], h2[:, :, 1:]).tolist(),
            "top_dims_share": (on_top / d2.sum(axis=(1, 2, 3))).tolist(),
            "top_dims_energy_share": (np.take_along_axis(h2.sum(axis=(1, 2)), top, axis=-1).sum(axis=-1)
                                      / h2.sum(axis=(1, 2, 3))).tolist()}


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

    dense = study.dense()
    windows = corpus_windows(model.tokenizer, settings.text, "evaluation", TRACK_TOKENS, settings.seq_len)
    dense_states = None
    built, tracks = {}, {}
    for name, plan in plans.items():
        key = name.replace(":", "_")
        if not (run.has(f"uniform_{key}") and run.has(f"track_{key}")):
            params = compress_plan(c, model.params, plan, study.statistics, batch_size=settings.batch_size)
            run.part(f"uniform_{key}", lambda p=params: {
                **study.score(c, p), "channel_sparsity": spread(channel_sparsity(c, p))})
            if dense_states is None and not run.has(f"track_{key}"):
                dense_states = np.asarray(clean_states(c, model.params, windows), np.float64)
            run.part(f"track_{key}", lambda p=params, d=dense_states: deviation_by_depth(
                d, np.asarray(clean_states(c, p, windows), np.float64)))
            del params
        built[name], tracks[name] = run.read(f"uniform_{key}"), run.read(f"track_{key}")
    models = []
    for name, row in built.items():
        ratio, ci = study.paired_ratio(row, built["sparsegpt"])
        scored = study.scored(row, dense)
        models.append({"method": name, **{k: scored[k] for k in ("perplexity", "perplexity_ci", "ratio", "ratio_ci")},
                       "vs_sparsegpt": ratio, "vs_sparsegpt_ci": ci, "channel_sparsity": row["channel_sparsity"],
                       "deviation_by_depth": tracks[name]})
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
