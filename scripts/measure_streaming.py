"""Peak resident memory of a streamed analysis against the same analysis with the whole model resident.

Each measurement runs in its own subprocess, one after the other (never together), and reports its own
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) with its results:

- ``runtime``: Python, JAX and the tokenizer with a small jitted computation and no model (the floor of
  any run);
- ``whole``: ``load_model`` (from the converted-params cache when present), then the analysis;
- ``streamed``: ``open_blocks`` (embeddings, final norm and head resident; each block read from the GGUF
  file and dequantised when needed), then the same analysis block by block.

The analyses are the perplexity (``run_perplexity_study``) and the rho profile at one eps
(``rho_profile`` on the whole model, ``streamed_profiles`` streamed), on a small token count so that the
activations are small next to the weights. The expected resident size of a streamed run is the runtime's
plus the resident weights (embeddings, final norm, head: ``top_bytes``), one block (``block_bytes``) and
the activations. Writes ``docs/results/data/streaming_memory.json``.

    nice -n 19 .venv/bin/python scripts/measure_streaming.py [--model qwen2.5-coder-1.5b] [--tokens 256]

The whole-model run of a 1.5B-parameter model needs about 7 GB: it starts only once ``--min-available-gib``
(default 12) are available, waiting up to ``--wait-minutes``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results" / "data" / "streaming_memory.json"


def available_gib() -> float:
    """``MemAvailable`` of /proc/meminfo, in GiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def wait_for_memory(gib: float, minutes: float) -> None:
    """Return once ``gib`` GiB are available; exit when they are not within ``minutes``."""
    deadline = time.monotonic() + 60 * minutes
    while available_gib() < gib:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {available_gib():.1f} GiB available (< {gib}) after {minutes} min: "
                             "the whole-model run is not started")
        time.sleep(15)


def peak_bytes() -> int:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(mode: str, analysis: str, model: str, tokens: int, seq_len: int, samples: int) -> dict:
    """One measurement, in this (fresh) process."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rhojax.data.corpora import statistics_split
    from rhojax.data.windows import corpus_windows
    from rhojax.eval.perplexity_study import PerplexitySettings, run_perplexity_study
    from rhojax.io.resolve import load_model
    from rhojax.io.stream import open_blocks
    from rhojax.models import forward
    from rhojax.propagation.profile import rho_profile
    from rhojax.propagation.streamed import ProfileRequest, streamed_profiles

    started = time.perf_counter()
    if mode == "runtime":
        from rhojax.io.resolve import _cached_tokenizer, resolve_path

        path, gguf_file = resolve_path(model)
        _cached_tokenizer(path, gguf_file)
        float(jax.jit(lambda x: (x @ x.T).sum())(jnp.ones((64, 64))))
        return {"peak_bytes": peak_bytes(), "seconds": time.perf_counter() - started}
    loaded = load_model(model) if mode == "whole" else open_blocks(model)
    load_seconds = time.perf_counter() - started
    if analysis == "ppl":
        result = run_perplexity_study(loaded, PerplexitySettings(tokens=tokens, seq_len=seq_len, batch_size=1,
                                                                 boots=10))
        out = {"perplexity": result["perplexity"], "window_nll": [float(x) for x in result["window_nll"]]}
    else:
        windows = corpus_windows(loaded.tokenizer, "wiki", statistics_split("wiki"), tokens, seq_len)
        key = jax.random.key(0)
        if mode == "whole":
            _, hidden = forward(loaded.config, loaded.params, jnp.asarray(windows), return_hidden=True)
            profile = rho_profile(loaded.config, loaded.params, hidden, key, eps=0.01, samples=samples,
                                  linearised=False)
        else:
            (profile,), _ = streamed_profiles(loaded, windows, key, [ProfileRequest(0.01, samples, False)], batch=1)
        out = {"rho": np.asarray(profile.mean("rho")).tolist()}
    return {"peak_bytes": peak_bytes(), "seconds": time.perf_counter() - started, "load_seconds": load_seconds,
            **out}


def measure(mode: str, analysis: str, args: argparse.Namespace) -> dict:
    """Run one measurement in a subprocess and return what it printed (its last line, JSON)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--analysis", analysis,
               "--model", args.model, "--tokens", str(args.tokens), "--seq-len", str(args.seq_len),
               "--samples", str(args.samples)]
    print(f"measuring {mode} {analysis} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} {analysis} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  peak {result['peak_bytes'] / 2**30:.2f} GiB in {result['seconds']:.0f} s", file=sys.stderr)
    return result


def expected_sizes(model: str, tokens: int, seq_len: int) -> dict:
    """Bytes of the whole model, of the resident top-level params and of one block (float32)."""
    from rhojax.io.stream import _source
    from rhojax.models.params import block_spec, model_bytes, top_spec

    config = _source(model)[2]
    size = lambda spec: 4 * sum(math.prod(s) for s in spec.values())  # noqa: E731
    windows = tokens // seq_len
    return {
        "layers": config.num_layers,
        "model_bytes": model_bytes(config),
        "top_bytes": size(top_spec(config)),
        "block_bytes": size(block_spec(config)),
        "states_bytes": 2 * windows * seq_len * config.hidden_size * 4,
        "logits_bytes": seq_len * config.vocab_size * 4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--samples", type=int, default=2, help="Perturbation samples of the rho profile.")
    parser.add_argument("--analyses", default="ppl,profile")
    parser.add_argument("--analysis", default="ppl", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("runtime", "whole", "streamed"), help=argparse.SUPPRESS)
    parser.add_argument("--min-available-gib", type=float, default=12.0)
    parser.add_argument("--wait-minutes", type=float, default=30.0, help="How long to wait for that memory.")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.analysis, args.model, args.tokens, args.seq_len, args.samples)))
        return

    from rhojax.provenance import provenance
    from rhojax.report.jsonio import write_json

    started, code = time.perf_counter(), provenance()  # the code the run started with
    runs: dict = {"runtime": measure("runtime", "none", args)}
    for analysis in args.analyses.split(","):
        for mode in ("streamed", "whole"):  # one after the other, never together
            if mode == "whole":
                wait_for_memory(args.min_available_gib, args.wait_minutes)
            runs[f"{analysis}_{mode}"] = measure(mode, analysis, args)
    sizes = expected_sizes(args.model, args.tokens, args.seq_len)
    comparisons = {}
    for analysis in args.analyses.split(","):
        streamed, whole = runs[f"{analysis}_streamed"], runs[f"{analysis}_whole"]
        key = "window_nll" if analysis == "ppl" else "rho"
        differences = [abs(a - b) / abs(b) for a, b in zip(streamed[key], whole[key], strict=True)]
        resident = (sizes["top_bytes"] + sizes["block_bytes"] + sizes["states_bytes"]
                    + (sizes["logits_bytes"] if analysis == "ppl" else 0))
        runtime = runs["runtime"]["peak_bytes"]
        comparisons[analysis] = {
            "streamed_over_whole": streamed["peak_bytes"] / whole["peak_bytes"],
            "expected_streamed_bytes": runtime + resident,
            "streamed_over_expected": streamed["peak_bytes"] / (runtime + resident),
            "streamed_above_runtime_over_resident": (streamed["peak_bytes"] - runtime) / resident,
            "max_relative_difference": max(differences),
        }
    write_json(Path(args.out), {
        "provenance": code,
        "settings": {"model": args.model, "tokens": args.tokens, "seq_len": args.seq_len, "samples": args.samples,
                     "analyses": args.analyses.split(","), "dtype": "float32"},
        "sizes": sizes,
        "runs": runs,
        "comparisons": comparisons,
        "wall_seconds": time.perf_counter() - started,
    })
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
