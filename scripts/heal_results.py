"""The healing result: SmolLM2 pruned to 50% with Wanda (uniform), then ``rhojax heal`` per seed.

Runs ``rhojax allocate`` once (the pruned model does not depend on the heal seed), then ``rhojax
heal`` for every seed (each resumable in its own folder), collects the ``heal.json`` files into one
data file with command, commit, machine and wall times, and renders ``docs/results/heal.md`` from it.

    .venv/bin/python scripts/heal_results.py --seeds 0,1,2 --work results/heal
    .venv/bin/python scripts/heal_results.py --render-only   # re-render the page from the data file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scipy import stats

from rhojax.report.jsonio import write_json

DATA = Path("docs/results/data/heal_smollm2_wanda50.json")
PAGE = Path("docs/results/heal.md")


def run(args: list[str]) -> float:
    start = time.perf_counter()
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)
    return time.perf_counter() - start


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def collect(args) -> dict:
    work = Path(args.work)
    rhojax = [sys.executable, "-m", "rhojax.cli"]
    pruned = work / "pruned"
    budget = ["--tasks", args.tasks, "--task-limit", str(args.task_limit), "--tokens", str(args.eval_tokens)]
    walls = json.loads(DATA.read_text()).get("wall_seconds", {}) if DATA.exists() else {}  # earlier runs' walls
    if not (pruned / "model" / "config.json").exists():
        walls["allocate"] = run([*rhojax, "allocate", "smollm2-135m", "--sparsity", "0.5", "--method", "wanda",
                                 "--schedule", "uniform", "--out", str(pruned), "--save-model", "--tasks", ""])
    runs = []
    for seed in args.seeds:
        out = work / f"heal_seed{seed}"
        command = [*rhojax, "heal", str(pruned / "model"), "--dense", "smollm2-135m", "--out", str(out),
                   "--mode", args.mode, "--rank", str(args.rank), "--steps", str(args.steps), "--lr", str(args.lr),
                   "--warmup", str(args.warmup), "--train-seq-len", str(args.seq_len),
                   "--batch-size", str(args.batch_size),
                   "--calib-tokens", str(args.calib_tokens), "--seed", str(seed), *budget]
        if not (out / "heal.json").exists():
            walls[f"heal_seed{seed}"] = run(command)
        record = json.loads((out / "heal.json").read_text())
        runs.append({"seed": seed, "command": " ".join(command[2:]), **record})
    return {
        "script": "python scripts/heal_results.py " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "note": "CPU run on a shared 2-core machine while other jobs ran; wall times include that contention",
        "wall_seconds": walls,
        "runs": runs,
    }


def wall_text(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


def render(data: dict) -> str:
    runs = data["runs"]
    gaps = [r["gap_recovered"] for r in runs]
    first = runs[0]
    s = first["settings"]
    lines = [
        "# Recovery after compression (`rhojax heal`)",
        "",
        "SmolLM2-135M pruned to 50% with Wanda, the same sparsity in every layer (`rhojax allocate "
        "--sparsity 0.5 --method wanda --schedule uniform --save-model`), then healed with `rhojax heal` "
        f"(mode `{s['mode']}`, rank {s['rank']} on {', '.join(s['kinds'])}, {s['steps']} AdamW steps, peak "
        f"learning rate {s['learning_rate']}, {s['warmup_steps']} warm-up steps then cosine decay, batches of "
        f"{s['batch_size']} windows of {first['protocol']['train_seq_len']} tokens from the calibration split). Pruned "
        "weights stay exactly zero: the adapters are merged as `W + [W != 0] * (A @ B)`.",
        "",
        f"Data: `{DATA}` (commands, commit `{data['commit'][:10]}`, machine, wall times). "
        f"{data['note']}.",
        "",
        "| seed | dense ppl | pruned ppl | healed ppl | gap recovered | dense acc | pruned acc | healed acc "
        "| train s | wall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    walls = data["wall_seconds"]
    for r in runs:
        acc = [f"{r[k].get('mean_acc', float('nan')):.3f}" for k in ("dense", "before", "after")]
        lines.append(
            f"| {r['seed']} | {r['dense']['perplexity']:.3f} | {r['before']['perplexity']:.3f} | "
            f"{r['after']['perplexity']:.3f} | {r['gap_recovered']:.1%} | {' | '.join(acc)} | "
            f"{r['train_seconds']:.0f} | {wall_text(walls.get('heal_seed' + str(r['seed'])))} |"
        )
    lines.append("")
    if len(gaps) > 1:
        mean, sd = statistics.mean(gaps), statistics.stdev(gaps)
        half = stats.t.ppf(0.975, len(gaps) - 1) * sd / len(gaps) ** 0.5  # 95% t-interval over seeds
        lines.append(f"Gap recovered over {len(gaps)} seeds: mean {mean:.1%}, 95% t-interval [{mean - half:.1%}, "
                     f"{mean + half:.1%}], min {min(gaps):.1%}, max {max(gaps):.1%} (sample std {sd:.1%}).")
        limit = 20 * 60
        timed = [w for k, w in walls.items() if k.startswith("heal_seed")]
        if timed:
            lines.append(f"Wall time per seed (allocation excluded, evaluation included): at most "
                         f"{max(timed) / 60:.1f} min over the {len(timed)} timed seeds, "
                         + ("within" if max(timed) <= limit else "over") + " the 20-minute goal on the 2-core CPU. "
                         "A seed without a wall time ran before the script recorded one.")
    else:
        lines.append(f"Only {len(gaps)} seed was run, so there is no interval over seeds yet.")
    mean_change = statistics.mean(r["after"]["mean_acc"] - r["before"]["mean_acc"] for r in runs)
    lines.append(f"Zero-shot accuracy change (healed - pruned), mean over seeds: {mean_change:+.3f}; with 100 items "
                 "per task, one item is 0.005 of the mean and the standard error of a task's accuracy is about 0.05, "
                 "so a change of this size is within noise.")
    tasks = first["protocol"]["tasks"]
    lines += [
        "",
        f"Perplexity: {first['before']['scored_tokens']} evaluation-split tokens. Accuracy: mean zero-shot "
        f"accuracy over {tasks} (first {first['protocol']['task_limit']} items each); per-task numbers are in the "
        "data file. `gap recovered = (pruned ppl - healed ppl) / (pruned ppl - dense ppl)`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--work", default="results/heal")
    parser.add_argument("--mode", default="lora")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--calib-tokens", type=int, default=65536)
    parser.add_argument("--eval-tokens", type=int, default=4096)
    parser.add_argument("--tasks", default="arc_easy,piqa")
    parser.add_argument("--task-limit", type=int, default=100)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    if not args.render_only:
        write_json(DATA, collect(args))
    PAGE.write_text(render(json.loads(DATA.read_text())))
    print(f"wrote {DATA} and {PAGE}")


if __name__ == "__main__":
    main()
