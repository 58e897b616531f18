"""Fair benchmarks in one command: rhojax against PyTorch baselines, every figure a ratio measured in the same run.

    python -m benchmarks                          # packaged SmolLM2, float32, the default device
    python -m benchmarks --model random:qwen2.5-coder-1.5b --dtype bfloat16 --no-torch   # no asset needed
    python -m benchmarks --quick --model random:tiny                                      # seconds

Sections (``--only`` picks some):

- ``peak``: the machine's matmul peak, measured on jitted GEMMs of the model's shapes and a square one;
- ``forward``: a forward with logits at 2,048 tokens and more, achieved FLOP/s (:mod:`benchmarks.flops`)
  against that peak, and against PyTorch's batched forward of the same weights;
- ``profile``: ``rho_profile`` (clean states included) against the same algorithm in PyTorch
  (:func:`benchmarks.torch_baselines.cached_profile`) for the aggregate version, the token-wise
  version and both; separately against the hook-based baseline (a full forward per layer per sample,
  :func:`benchmarks.bench_profile.torch_profile`);
- ``sweep``: ``run_sweep`` against a PyTorch sweep that also starts from the cached prefix
  (:func:`benchmarks.torch_baselines.cached_sweep`) and against a full forward per configuration,
  whose ratio is compared with the FLOP ceiling of prefix caching;
- ``profile_cost``: the whole default ``rhojax profile`` study against its rho profile alone, part by part
  (a packaged model only: the study reads the corpus through the model's tokenizer).

First calls (compilation included) are reported apart from the steady-state time (best of ``--repeats``).
The table is printed and written, with provenance, to ``docs/results/data/benchmarks_<machine>.json``
(``_bfloat16`` added for that dtype; ``--out`` elsewhere); ``scripts/render_results.py`` renders it
into docs/performance.md.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/run.py``: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import dataclasses
import functools
import json
import re
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.flops import best_time, forward_flops, matmul_peak, sweep_flop_ceiling
from benchmarks.models import BenchModel, load_bench_model, torch_model
from benchmarks.report import GOALS, render_tables
from rhojax.models import embed, forward, run_blocks
from rhojax.models.transformer import default_positions
from rhojax.provenance import machine, provenance
from rhojax.report.jsonio import write_json
from rhojax.runs import as_settings, settings_difference

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("peak", "forward", "profile", "sweep", "profile_cost")


@functools.partial(jax.jit, static_argnames="config")
def clean_states(config, params, tokens):
    """``h_0 .. h_L`` (L + 1, N, T, D) without the logits (what the profile needs)."""
    positions = default_positions(tokens)
    return run_blocks(config, params["blocks"], embed(config, params, tokens, positions), positions,
                      return_hidden=True)[1]


def machine_name() -> str:
    """``cpu-<cores>core`` or the accelerator's kind as a file-name slug (``gpu-nvidia-h200``)."""
    m = machine()
    if m["backend"] == "cpu":
        return f"cpu-{m['cores']}core"
    return f"{m['backend']}-" + re.sub(r"[^a-z0-9]+", "-", m["devices"][0].lower()).strip("-")


class Bench:
    """One benchmark run: the model, the options and the torch side (None with ``--no-torch``)."""

    def __init__(self, args, model: BenchModel):
        self.args, self.model = args, model
        self.config, self.params = model.config, model.params
        self.torch = None
        self.torch_device = "cuda" if args.device in ("gpu", "cuda") else "cpu"
        if not args.no_torch and set(args.only) & {"forward", "profile", "sweep"}:
            import torch

            self.torch_module = torch
            if self.torch_device == "cuda" and not torch.cuda.is_available():
                print("[benchmarks] this PyTorch has no CUDA: PyTorch baselines skipped", flush=True)
            else:
                self.torch = torch_model(model, args.dtype, self.torch_device)

    def sync(self):
        if self.torch is not None and self.torch_device == "cuda":
            self.torch_module.cuda.synchronize()

    def torch_time(self, fn) -> tuple[float, float]:
        def call():
            fn()
            self.sync()

        return best_time(call, self.args.repeats)

    def jax_time(self, fn) -> tuple[float, float]:
        return best_time(lambda: jax.block_until_ready(fn()), self.args.repeats)

    # --- sections -----------------------------------------------------------------------------------------

    def peak(self) -> dict:
        c, tokens = self.config, self.args.windows * self.args.seq_len
        square = 512 if self.args.quick else (4096 if jax.default_backend() != "cpu" else 2048)
        shapes = [(tokens, c.hidden_size, c.intermediate_size), (tokens, c.intermediate_size, c.hidden_size),
                  (square, square, square)]
        return matmul_peak(shapes, self.params["embed"].dtype, self.args.repeats)

    def forward(self) -> list[dict]:
        rows = []
        for windows, seq_len in self.args.forward_shapes:
            tokens = jnp.asarray(self.model.windows(windows, seq_len))
            flops = forward_flops(self.config, windows, seq_len)
            first, seconds = self.jax_time(lambda t=tokens: forward(self.config, self.params, t))
            row = {"windows": windows, "seq_len": seq_len, "tokens": windows * seq_len, "gflop": flops / 1e9,
                   "rhojax_seconds": seconds, "rhojax_compile_seconds": first - seconds,
                   "rhojax_gflops": flops / seconds / 1e9}
            if self.torch is not None:
                from benchmarks.torch_baselines import batched_forward

                ids = np.asarray(tokens)
                _, torch_s = self.torch_time(lambda ids=ids: batched_forward(self.torch, ids, self.torch_device))
                ours = np.asarray(forward(self.config, self.params, tokens)[:, -1], np.float32)
                theirs = batched_forward(self.torch, ids[:, :], self.torch_device)[:, -1].float().cpu().numpy()
                row |= {"torch_seconds": torch_s, "torch_gflops": flops / torch_s / 1e9,
                        "speedup_vs_torch": torch_s / seconds,
                        "max_last_logit_difference": float(np.max(np.abs(ours - theirs)))}
            rows.append(row)
        return rows

    def profile(self) -> dict:
        from rhojax.propagation import rho_profile

        a, config, params = self.args, self.config, self.params
        windows = self.model.windows(a.windows, a.seq_len)
        tokens, key = jnp.asarray(windows), jax.random.key(a.seed)
        out = {"windows": a.windows, "seq_len": a.seq_len, "samples": a.samples, "eps": a.eps, "rows": []}
        all_versions = (("aggregate",), ("tokenwise",), ("aggregate", "tokenwise"))
        for versions in all_versions[:1] if a.quick else all_versions:
            def ours(versions=versions):
                hidden = clean_states(config, params, tokens)
                return rho_profile(config, params, hidden, key, eps=a.eps, samples=a.samples, linearised=False,
                                   versions=versions)

            first, seconds = best_time(ours, a.repeats)
            prof = ours()
            row = {"versions": "+".join(versions), "rhojax_seconds": seconds, "rhojax_compile_seconds": first - seconds,
                   "rhojax_mean_rho": float(np.mean(prof.rho if prof.rho is not None else prof.token_rho_mean))}
            if self.torch is not None:
                from benchmarks.torch_baselines import cached_profile

                run = functools.partial(cached_profile, self.torch, windows, a.samples, a.eps, a.seed, versions,
                                        self.torch_device)
                _, torch_s = self.torch_time(run)
                theirs = run()[versions[0]]
                row |= {"torch_seconds": torch_s, "speedup_vs_torch": torch_s / seconds,
                        "torch_mean_rho": float(np.mean(theirs))}
            out["rows"].append(row)
        if self.torch is not None and not a.no_hooks:
            from benchmarks.bench_profile import torch_profile

            start = time.perf_counter()
            rho = torch_profile(self.torch, windows, a.samples, a.eps, a.seed, self.torch_device)
            self.sync()
            hooks_s = time.perf_counter() - start
            aggregate = out["rows"][0]
            out["hooks"] = {"versions": "aggregate", "torch_seconds": hooks_s,
                            "speedup": hooks_s / aggregate["rhojax_seconds"], "torch_mean_rho": float(rho.mean())}
        return out

    def sweep(self) -> dict:
        from benchmarks.bench_sweep import naive_sweep
        from rhojax.sensitivity.grid import Configuration
        from rhojax.sensitivity.sweep import run_sweep

        a, config, params = self.args, self.config, self.params
        L = config.num_layers
        layers = sorted({0, L - 1} if a.quick else {0, L // 3, 2 * L // 3, L - 1})
        kinds = ("q", "up") if a.quick else config.site_kinds
        windows = self.model.windows(a.windows, a.seq_len, split="evaluation")
        grid = [Configuration(t, k, "magnitude", 0.5) for t in layers for k in kinds]

        last = {}  # each batch's records from its last timed call (compared with PyTorch below)

        def engine(batch):
            with tempfile.TemporaryDirectory() as tmp:
                last[batch] = run_sweep(config, params, windows, grid, Path(tmp) / "s.jsonl", config_batch=batch,
                                        window_batch=a.windows)[0]

        # Configurations per block pass trade batch size against padding and cache use, and the best differs by
        # machine: each is timed and the fastest reported, with every one recorded.
        timed = {batch: best_time(functools.partial(engine, batch), max(1, a.repeats - 1))
                 for batch in sorted({1, 2, len(kinds)})}
        batch = min(timed, key=lambda b: timed[b][1])
        first, seconds = timed[batch]
        records = last[batch]
        naive_sweep(config, params, windows, grid[:1])  # compiles the full forward
        start = time.perf_counter()
        naive_sweep(config, params, windows, grid)
        naive_s = time.perf_counter() - start
        ceiling = sweep_flop_ceiling(config, layers)
        out = {"windows": a.windows, "seq_len": a.seq_len, "layers": layers, "configurations": len(grid),
               "method": "magnitude 0.5", "config_batch": batch, "rhojax_seconds": seconds,
               "seconds_by_config_batch": {str(b): s for b, (_, s) in timed.items()},
               "rhojax_compile_seconds": first - seconds, "naive_seconds": naive_s,
               "speedup_vs_naive": naive_s / seconds, "flop_ceiling": ceiling,
               "fraction_of_ceiling": naive_s / seconds / ceiling}
        if self.torch is not None and config.family == "llama":
            from benchmarks.torch_baselines import cached_sweep

            sites = [(c.layer, c.kind) for c in grid]
            run = functools.partial(cached_sweep, self.torch, windows, sites, 0.5, self.torch_device)
            _, torch_s = self.torch_time(run)
            theirs = run()
            agree = max(abs(t[0] / r["ppl_ratio"] - 1) for t, r in zip(theirs, records, strict=True))
            out |= {"torch_seconds": torch_s, "speedup_vs_torch": torch_s / seconds,
                    "max_ppl_ratio_relative_difference": agree}
        return out

    def profile_cost(self) -> dict | None:
        if self.model.packaged is None:
            return None
        from rhojax.propagation.study import ProfileSettings, run_profile_study
        from rhojax.runs import RunFolder

        s = ProfileSettings()
        if self.args.quick:
            s = dataclasses.replace(s, tokens=2 * self.args.seq_len, seq_len=self.args.seq_len,
                                    drift_tokens=self.args.seq_len, jacobian_tokens=self.args.seq_len, boots=50)
        model = self.model.packaged
        with tempfile.TemporaryDirectory() as tmp:
            run = TimedRun(RunFolder.open(Path(tmp) / "r", {"bench": 1}))
            start = time.perf_counter()
            run_profile_study(model, run, s)
            total = time.perf_counter() - start
        L, windows = model.config.num_layers, s.tokens // s.seq_len
        n_drift = max(1, min(windows, s.drift_tokens // s.seq_len))
        suffix = L * (L + 1) // 2  # block passes of one sample injected at every layer in turn
        eps_count = len(set(s.absorption_eps) | {s.eps})
        work = {"rho": 2 * s.samples * L * windows, "rho_jvp": s.samples * L * windows,
                "sweep": 2 * s.sweep_samples * L * windows * len(s.sweep_eps),
                "drift": 2 * eps_count * s.drift_samples * suffix * n_drift}
        return {"settings": dataclasses.asdict(s), "rho_seconds": run.seconds["profile"], "total_seconds": total,
                "ratio": total / run.seconds["profile"], "parts": list(run.seconds.items()),
                "work_window_block_passes": work}


class TimedRun:
    """A :class:`~rhojax.runs.RunFolder` stand-in that records the seconds each part takes, in run order."""

    def __init__(self, run):
        self.run, self.seconds = run, {}

    def part(self, name, compute):
        start = time.perf_counter()
        value = self.run.part(name, compute)
        self.seconds[name] = time.perf_counter() - start
        return value


def goals(data: dict) -> list[dict]:
    """Each goal of :data:`benchmarks.report.GOALS` with its measured value, whether it is met and by how much not."""
    out = []

    def add(name, measured, note=""):
        target, better = GOALS[name]
        met = measured >= target if better == "higher" else measured <= target
        gap = "" if met else (f"{target / measured:.2f}x short" if better == "higher" else
                              f"{measured / target:.2f}x over")
        out.append({"goal": name, "target": target, "measured": measured, "met": met, "gap": gap, "note": note})

    peak = data.get("peak", {}).get("gflops")
    for row in data.get("forward", []):
        shape = f"forward {row['windows']} x {row['seq_len']:,} tokens"
        if peak:
            row["fraction_of_peak"] = row["rhojax_gflops"] / peak
            add(f"{shape}: fraction of matmul peak", row["fraction_of_peak"],
                "time spent outside large GEMMs (softmax, norms, RoPE, small per-head attention products; "
                "not broken down by this run)")
        if "speedup_vs_torch" in row:
            add(f"{shape}: vs PyTorch batched", row["speedup_vs_torch"],
                "the gap grows with the window: attention's per-head products (head size 64) and the element-wise "
                "work around them run slower under XLA:CPU than in PyTorch's fused CPU attention")
    prof = data.get("profile")
    if prof:
        for row in prof["rows"]:
            if "speedup_vs_torch" in row:
                add(f"profile ({row['versions']}): vs PyTorch same algorithm", row["speedup_vs_torch"],
                    "one version: rhojax's perturbed block pass is slower than PyTorch's at this shape (as in the "
                    "forward); both versions share one perturbed pass in rhojax, two in the PyTorch algorithm")
    sweep = data.get("sweep")
    if sweep:
        add("sweep: fraction of the prefix-caching FLOP ceiling", sweep["fraction_of_ceiling"],
            "the ceiling counts block and unembedding matmuls only; compression, the dense reference pass and "
            "per-call overheads are outside it")
        if "speedup_vs_torch" in sweep:
            add("sweep: vs PyTorch with cached prefix", sweep["speedup_vs_torch"],
                "both sides run the same suffixes from the cached prefix, so the gap is the per-block speed of the "
                "forward rows")
    cost = data.get("profile_cost")
    if cost:
        w = cost["work_window_block_passes"]
        extra = (w["sweep"] + w["drift"]) / w["rho"]
        add("default profile / rho profile alone", cost["ratio"],
            f"the eps sweep and drift runs alone perform {extra:.1f}x the perturbed block passes of rho "
            f"(drift: every layer's injection runs the whole suffix, at {len(cost['settings']['absorption_eps'])} "
            "eps and both scalings)")
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="Packaged name, or random:<shape> (benchmarks.models).")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--device", default=None, help="JAX platform (cpu, gpu, tpu); PyTorch uses cuda for gpu.")
    parser.add_argument("--quick", action="store_true",
                        help="Small windows, one repeat, fewer profile versions and sweep sites: checks the harness.")
    parser.add_argument("--no-torch", action="store_true", help="Skip every PyTorch baseline (no torch needed).")
    parser.add_argument("--no-hooks", action="store_true", help="Skip the (slow) hook-based PyTorch baseline.")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="Steady-state calls after the first (best is kept).")
    parser.add_argument("--machine", default=None, help="Name in the data file's name (default: from the device).")
    parser.add_argument("--out", type=Path, default=None, help="Data file (default docs/results/data/...).")
    parser.add_argument("--update", action="store_true",
                        help="Re-measure the --only sections into the existing data file (same model and shapes); "
                             "the other sections and the file's provenance are kept, the re-run is recorded.")
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.seq_len, args.samples, args.repeats = 2, min(args.seq_len, 64), 2, 1
        args.forward_shapes = [(args.windows, args.seq_len)]
    else:
        args.forward_shapes = [(args.windows, args.seq_len), (2, 2048), (1, 4096)]
    return args


def updated_file(path: Path, settings: dict) -> dict:
    """The data file ``--update`` re-measures sections of; its model, dtype and shapes must be the run's."""
    if not path.exists():
        raise SystemExit(f"--update: {path} does not exist; run the benchmarks without --update first")
    data = json.loads(path.read_text())

    def compared(s: dict) -> dict:  # the repeats and the sections run may differ between runs of one file
        return as_settings({k: v for k, v in s.items() if k not in ("repeats", "only")})

    changed = settings_difference(compared(data["settings"]), compared(settings))
    if changed:
        raise SystemExit(f"--update: {path} was measured with other settings ({'; '.join(changed)}); use the "
                         "same ones, or --out for a new file")
    return data


def main(argv=None) -> int:
    args = parse_args(argv)
    device = contextlib.nullcontext()
    if args.device is not None:
        platform = "gpu" if args.device == "cuda" else args.device
        try:
            device = jax.default_device(jax.devices(platform)[0])
        except RuntimeError as error:
            raise SystemExit(f"--device {args.device}: this JAX has no {platform} backend ({error}); install the "
                             "jaxlib plugin for it (for NVIDIA GPUs: pip install 'jax[cuda12]')") from None
    started, code = time.perf_counter(), provenance()  # the code the run started with
    name = (args.machine or machine_name()) + ("" if args.dtype == "float32" else f"_{args.dtype}")
    out = args.out or ROOT / "docs" / "results" / "data" / f"benchmarks_{name}.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "update", "only")}
    earlier = updated_file(out, settings) if args.update else None
    with device:
        model = load_bench_model(args.model, args.dtype, args.seed)
        bench = Bench(args, model)
        data = {"provenance": code, "settings": {**settings, "only": args.only},
                "model": {"name": args.model, "family": model.config.family, "layers": model.config.num_layers,
                          "hidden_size": model.config.hidden_size, "dtype": args.dtype},
                "torch": None if bench.torch is None else {"version": bench.torch_module.__version__,
                                                            "threads": bench.torch_module.get_num_threads(),
                                                            "device": bench.torch_device}}
        for section in SECTIONS:
            if section in args.only:
                print(f"[benchmarks] {section} ...", flush=True)
                result = getattr(bench, section)()
                if result is not None:
                    data[section] = result
    wall = time.perf_counter() - started
    if earlier is not None:  # the re-measured sections replace the file's; everything else stays as measured
        rerun = {"sections": args.only, "provenance": code, "wall_seconds": wall}
        data = {**earlier, **{s: data[s] for s in args.only if s in data},
                "updates": [*earlier.get("updates", []), rerun]}
    else:
        data["wall_seconds"] = wall
    data["goals"] = goals(data)
    write_json(out, data)
    print(render_tables(data))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
