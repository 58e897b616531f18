"""Bucketed, batched log-likelihood scoring against a per-request baseline, measured in the same run.

Baseline: each request runs alone through the jitted ``forward`` at its own length (one compile
per distinct length, batch 1, full logits), which is what a straightforward port of a PyTorch
scorer does. Ours: :func:`rhojax.eval.loglikelihood.score_requests` (power-of-two length and
continuation buckets, ``batch_size`` rows, only continuation positions unembedded). Both wall times
include compilation, as a user pays it. Prints the ratio and the largest log-likelihood gap.

    .venv/bin/python benchmarks/bench_eval.py --task arc_easy --items 40
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.eval.loglikelihood import encode_request, score_requests
from rhojax.eval.task_data import load_task
from rhojax.io.resolve import load_model
from rhojax.models.transformer import forward


def per_request(config, params, requests) -> np.ndarray:
    out = []
    for context, continuation in requests:
        seq = context + continuation
        logits = forward(config, params, jnp.asarray(seq[:-1])[None])[0, -len(continuation):]
        logp = jax.nn.log_softmax(logits, -1)
        out.append(float(logp[jnp.arange(len(continuation)), jnp.asarray(continuation)].sum()))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="arc_easy")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    model = load_model(args.model)
    requests = [
        encode_request(model.tokenizer, c, x)
        for item in load_task(args.task, args.items)
        for c, x in zip(item.contexts, item.continuations, strict=True)
    ]
    t0 = time.perf_counter()
    baseline = per_request(model.config, model.params, requests)
    t1 = time.perf_counter()
    ours, _ = score_requests(model.config, model.params, requests, batch_size=args.batch_size)
    t2 = time.perf_counter()
    print(f"{args.model} {args.task}: {len(requests)} requests, "
          f"{len({len(c) + len(x) for c, x in requests})} distinct lengths")
    print(f"per-request baseline {t1 - t0:.1f} s, bucketed batched {t2 - t1:.1f} s, "
          f"speed-up x{(t1 - t0) / (t2 - t1):.2f}, max |loglik gap| {np.abs(baseline - ours).max():.2e}")


if __name__ == "__main__":
    main()
