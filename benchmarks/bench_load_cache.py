"""Model load time: the first load (convert the GGUF and write the orbax params cache) against later
loads (restore the cache), for each packaged model, in one process on one machine.

Each model gets an empty params cache in a temporary folder ($RHOJAX_CACHE); the packaged GGUF is
located (split ones concatenated) before timing. ``uncached`` is a conversion with the cache off,
``first`` converts and writes the cache, ``later`` is the best of ``--repeats`` restores (the source
files and the cache are in the OS page cache by then, as on a workstation). Results: a ratio on one
machine, recorded with its load average; the numbers are not claims about other machines.

    .venv/bin/python benchmarks/bench_load_cache.py [--models smollm2-135m,qwen2.5-coder-0.5b] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time

import jax

from rhojax.io.resolve import PACKAGED_MODELS, load_model, packaged_file
from rhojax.models import count_params
from rhojax.report.jsonio import write_json


def timed_load(spec: str, *, cache: bool) -> tuple[float, int]:
    start = time.perf_counter()
    model = load_model(spec, cache=cache)
    jax.block_until_ready(model.params)
    return time.perf_counter() - start, count_params(model.params)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/results/data/load_cache.json")
    args = parser.parse_args()

    rows = []
    jax.block_until_ready(jax.numpy.ones(4) * 2)  # backend start-up outside the timings
    for spec in args.models.split(","):
        with tempfile.TemporaryDirectory() as cache:
            previous = os.environ.get("RHOJAX_CACHE")
            os.environ["RHOJAX_CACHE"] = cache
            try:
                packaged_file(PACKAGED_MODELS[spec])  # split GGUFs are concatenated here, outside the timings
                load_before = os.getloadavg()
                uncached, n = timed_load(spec, cache=False)
                first, _ = timed_load(spec, cache=True)
                later = [timed_load(spec, cache=True)[0] for _ in range(args.repeats)]
                load_after = os.getloadavg()
            finally:
                if previous is None:
                    os.environ.pop("RHOJAX_CACHE")
                else:
                    os.environ["RHOJAX_CACHE"] = previous
        row = {"model": spec, "params": n, "uncached_seconds": uncached, "first_seconds": first,
               "later_seconds": later, "later_best_seconds": min(later), "ratio_first_to_later": first / min(later),
               "load_average_before": load_before, "load_average_after": load_after}
        rows.append(row)
        print(f"{spec}: uncached {uncached:.2f}s, first {first:.2f}s, later {min(later):.2f}s "
              f"(x{first / min(later):.1f}); load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    write_json(args.out, {
        "command": "python benchmarks/bench_load_cache.py " + " ".join(f"--{k.replace('_', '-')} {v}"
                                                                   for k, v in vars(args).items()),
        "commit": commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "backend": jax.default_backend(), "jax": jax.__version__},
        "note": "measured on a shared 2-core machine while other jobs ran (see each row's load average); "
                "the first/later ratio is the result, not the absolute seconds",
        "dtype": "float32",
        "repeats": args.repeats,
        "rows": rows,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
