"""Perplexity throughput: rhojax's jitted forward against transformers' PyTorch forward.

Both score the same windows of the evaluation split with the same batch size on the same machine
in one run; the result is a ratio (tokens/s rhojax / tokens/s PyTorch), never an absolute claim.
The first rhojax call (compilation) is timed separately and excluded from throughput.

    .venv/bin/python benchmarks/bench_perplexity.py [--windows 8] [--batch-size 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rhojax.data.windows import corpus_windows
from rhojax.eval.perplexity import perplexity
from rhojax.io.resolve import load_model
from rhojax.report.jsonio import write_json


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_perplexity(model, windows: np.ndarray, batch_size: int) -> float:
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            batch = torch.tensor(windows[i : i + batch_size], dtype=torch.long)
            logits = model(batch).logits[:, :-1]
            total += float(
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
                )
            )
    return float(np.exp(total / (len(windows) * (windows.shape[1] - 1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks/perplexity.json")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM

    model = load_model(args.model)
    windows = corpus_windows(model.tokenizer, "wiki", "evaluation", args.windows * args.seq_len, args.seq_len)
    tokens = windows.size

    start = time.perf_counter()
    ours = perplexity(model.config, model.params, windows, batch_size=args.batch_size).perplexity
    compile_and_first = time.perf_counter() - start
    t_ours = best_of(lambda: perplexity(model.config, model.params, windows, batch_size=args.batch_size), args.repeats)

    reference = AutoModelForCausalLM.from_pretrained(
        str(model.source.parent), gguf_file=model.gguf_file, dtype=torch.float32
    ).eval()
    theirs = torch_perplexity(reference, windows, args.batch_size)
    t_torch = best_of(lambda: torch_perplexity(reference, windows, args.batch_size), args.repeats)

    result = {
        "model": args.model,
        "tokens": tokens,
        "windows": args.windows,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "rhojax": {"perplexity": ours, "seconds": t_ours, "tokens_per_s": tokens / t_ours,
                   "first_call_seconds": compile_and_first},
        "pytorch_transformers": {"perplexity": theirs, "seconds": t_torch, "tokens_per_s": tokens / t_torch},
        "speedup": t_torch / t_ours,
    }
    write_json(args.out, result)
    print(
        f"{tokens} tokens: rhojax {tokens / t_ours:,.0f} tok/s (ppl {ours:.4f}), "
        f"PyTorch {tokens / t_torch:,.0f} tok/s (ppl {theirs:.4f}); ratio {t_torch / t_ours:.2f}x -> {args.out}"
    )


if __name__ == "__main__":
    main()
