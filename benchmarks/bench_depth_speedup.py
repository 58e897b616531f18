"""Wall-clock speed-up of a physically depth-pruned model against the dense one.

Both run the same jitted forward (``window_nll``) over the same evaluation windows, interleaved
in one run (dense, pruned, dense, pruned, ...), best of ``--repeats``; compilation is excluded.
The result is tokens/s of each and their ratio, next to the ideal ratio ``L / (L - k)`` of the
block stack alone (embedding and unembedding are not removed, so the measured ratio is lower).
The removed layers are the first ``--remove`` layers of the Block Influence order (cheap to score);
which layers are removed does not change the cost.

    .venv/bin/python benchmarks/bench_depth_speedup.py [--remove 8] [--windows 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.data.windows import corpus_windows
from rhojax.depth import block_influence, remove_layers
from rhojax.eval.perplexity import window_nll
from rhojax.io.resolve import load_model
from rhojax.report.jsonio import write_json


def run_all(config, params, batches) -> None:
    for batch in batches:
        jax.block_until_ready(window_nll(config, params, batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--remove", type=int, default=8)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks/depth_speedup.json")
    args = parser.parse_args()

    model = load_model(args.model)
    windows = corpus_windows(model.tokenizer, "wiki", "evaluation", args.windows * args.seq_len, args.seq_len)
    calibration = corpus_windows(model.tokenizer, "wiki", "calibration", 2 * args.seq_len, args.seq_len)
    removed = np.argsort(block_influence(model.config, model.params, calibration).bi)[: args.remove].tolist()
    pruned = remove_layers(model.config, model.params, removed)
    batches = [jnp.asarray(windows[i : i + args.batch_size]) for i in range(0, len(windows), args.batch_size)]
    variants = {"dense": (model.config, model.params), "pruned": pruned}
    compile_s = {}
    for name, (config, params) in variants.items():
        start = time.perf_counter()
        run_all(config, params, batches[:1])
        compile_s[name] = time.perf_counter() - start
    best = {name: float("inf") for name in variants}
    for _ in range(args.repeats):
        for name, (config, params) in variants.items():
            start = time.perf_counter()
            run_all(config, params, batches)
            best[name] = min(best[name], time.perf_counter() - start)
    tokens = windows.size
    layers = model.config.num_layers
    result = {
        "model": args.model,
        "backend": jax.default_backend(),
        "removed_layers": removed,
        "layers": {"dense": layers, "pruned": layers - args.remove},
        "tokens_per_run": tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "first_call_s": compile_s,
        "best_s": best,
        "tokens_per_s": {name: tokens / t for name, t in best.items()},
        "speedup": best["dense"] / best["pruned"],
        "ideal_block_speedup": layers / (layers - args.remove),
    }
    write_json(args.out, result)
    print(f"dense {result['tokens_per_s']['dense']:.0f} tok/s, pruned ({args.remove} of {layers} layers removed) "
          f"{result['tokens_per_s']['pruned']:.0f} tok/s: speed-up {result['speedup']:.2f}x "
          f"(block-stack ideal {result['ideal_block_speedup']:.2f}x); wrote {args.out}")


if __name__ == "__main__":
    main()
