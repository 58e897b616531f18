"""Speed of the bound checker's evaluation: one jitted ``vmap`` over layers against a per-layer loop.

Both evaluate the same four per-matrix twins (weight perturbation, relative, weight + input,
additive composition) in float64 on the same compressed matrices (RTN 4-bit, stage two RTN 8-bit)
and the same activations of one weight kind of SmolLM2, interleaved, best of ``--repeats``;
compilation is excluded. The loop is the plain reading (numpy, one layer at a time); the ratio is
the checker's speed-up. The results must agree to float64 round-off.

    .venv/bin/python benchmarks/bench_bounds.py [--kind up] [--check-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.bounds import twins
from rhojax.bounds.checker import DEFAULT_TWINS, activation_rtn8, matrix_checks, site_inputs
from rhojax.compress import INPUT_OF, compress_matrix
from rhojax.data.windows import corpus_windows
from rhojax.io.resolve import load_model
from rhojax.report.jsonio import write_json


def loop(w, w2, w3, x, xq) -> np.ndarray:
    out = []
    for layer in range(w.shape[0]):
        checks = matrix_checks(DEFAULT_TWINS, w[layer], w2[layer], w3[layer], x[layer], xq[layer])
        out.append([float(c.actual) for c in checks.values()])
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--kind", default="up")
    parser.add_argument("--check-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/bounds/bench_bounds.json")
    args = parser.parse_args()

    model = load_model(args.model)
    windows = corpus_windows(model.tokenizer, "wiki", "calibration", 256, 128)
    x = site_inputs(model.config, model.params, windows, args.check_tokens)[INPUT_OF[args.kind]]
    w = model.params["blocks"][args.kind]["w"]
    w2 = jax.vmap(lambda m: compress_matrix("rtn", m, 4))(w)
    w3 = jax.vmap(lambda m: compress_matrix("rtn", m, 8))(w2)
    xq = jax.vmap(activation_rtn8)(jnp.asarray(x))
    arrays = [np.asarray(a, np.float64) for a in (w, w2, w3, x, xq)]
    with jax.enable_x64(True):
        batched = jax.jit(jax.vmap(lambda *a: matrix_checks(DEFAULT_TWINS, *a)))
        device = [jnp.asarray(a) for a in arrays]
        jax.block_until_ready(batched(*device))
        times = {"vmap": [], "loop": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = jax.block_until_ready(batched(*device))
            times["vmap"].append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = loop(*arrays)
            times["loop"].append(time.perf_counter() - start)
        vmapped = np.stack([np.asarray(c.actual) for c in result.values()], axis=1)
    agree = bool(np.allclose(vmapped, reference, rtol=1e-10))
    best = {k: min(v) for k, v in times.items()}
    record = {"model": args.model, "kind": args.kind, "layers": int(w.shape[0]), "check_tokens": args.check_tokens,
              "seconds": best, "speedup_vmap_over_loop": best["loop"] / best["vmap"], "results_agree": agree,
              "twins": list(result), "backend": jax.default_backend(), "roundoff": twins.ROUNDOFF}
    write_json(args.out, record)
    print(record)


if __name__ == "__main__":
    main()
