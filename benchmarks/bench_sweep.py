"""Sweep throughput (configurations per minute): the engine vs a naive full forward per configuration.

Both sides compress the same sites with the same operator and report perplexity ratio and final-state
drift. The naive side splices the compressed matrix into the full params and runs the whole model from
the embedding (one forward with hidden states per configuration, dense reference cached once). The
engine starts from the cached clean ``h_t`` and runs only block ``t``..``L-1`` (``rhojax.sensitivity``).
Both are warmed up (compiled) on one configuration first; the ratio is measured in the same run.

With ``--torch-baseline`` a third side does what the original code did: the transformers model,
the site's weight overwritten in place, a full PyTorch forward per configuration, weight restored.

The engine's ideal speed-up is bounded by matmul FLOPs: a full forward costs ``L b + u`` (``b`` one
block, ``u`` the unembedding), a site in layer ``t`` costs ``(L - t) b + u``; the report prints that
ceiling for the grid next to the measured ratio.

    .venv/bin/python -m benchmarks.bench_sweep --windows 2 --seq-len 256 --torch-baseline \
        --out results/sensitivity/bench_sweep.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.flops import sweep_flop_ceiling
from rhojax.compress import compress_matrix
from rhojax.data.windows import corpus_windows
from rhojax.eval.perplexity import token_nll
from rhojax.io.resolve import load_model
from rhojax.models import forward
from rhojax.report.jsonio import write_json
from rhojax.sensitivity.grid import Configuration
from rhojax.sensitivity.sweep import run_sweep


def naive_sweep(config, params, windows, configurations) -> list[tuple[float, float]]:
    """(ppl ratio, drift) per configuration from a full forward of the spliced params."""
    tokens = jnp.asarray(windows)
    logits, hidden = forward(config, params, tokens, return_hidden=True)
    dense_nll = float(token_nll(logits, tokens).sum())
    h_dense = hidden[-1]
    out = []
    for c in configurations:
        w = params["blocks"][c.kind]["w"]
        w_new = compress_matrix(c.method, w[c.layer], c.level)
        spliced = {**params, "blocks": {**params["blocks"], c.kind: {**params["blocks"][c.kind],
                                                                       "w": w.at[c.layer].set(w_new)}}}
        logits, hidden = forward(config, spliced, tokens, return_hidden=True)
        nll = float(token_nll(logits, tokens).sum())
        drift = float(jnp.linalg.norm(hidden[-1] - h_dense) / jnp.linalg.norm(h_dense))
        out.append((float(np.exp((nll - dense_nll) / (tokens.shape[0] * (tokens.shape[1] - 1)))), drift))
    return out


def torch_sweep(model, config, params, windows, configurations) -> list[tuple[float, float]]:
    """(ppl ratio, drift) per configuration from a full PyTorch forward with the site overwritten in place."""
    import torch

    from rhojax.eval.perplexity import perplexity_from_nll

    names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
             "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
    ids = torch.tensor(np.asarray(windows), dtype=torch.long)

    def run():
        with torch.no_grad():
            logits = model(ids).logits
            logp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
            nll = -logp.gather(-1, ids[:, 1:, None])[..., 0].sum(-1)
        return perplexity_from_nll(nll.numpy(), ids.shape[1]).perplexity, captured["h"]

    # h_L is the last block's raw output (transformers' last hidden state is normed): take it with a hook
    captured = {}
    hook = model.model.layers[-1].register_forward_hook(
        lambda module, args, out: captured.update(h=out[0] if isinstance(out, tuple) else out))
    dense_ppl, h_dense = run()
    out = []
    for c in configurations:
        linear = model.model.layers[c.layer].get_submodule(names[c.kind])
        w = np.asarray(params["blocks"][c.kind]["w"][c.layer])
        if not np.allclose(linear.weight.detach().numpy(), w.T, atol=1e-5):
            raise SystemExit(f"transformers' {c.layer}.{names[c.kind]} differs from rhojax's weights")
        original = linear.weight.data.clone()
        linear.weight.data = torch.from_numpy(np.asarray(compress_matrix(c.method, w, c.level)).T.copy())
        ppl, h = run()
        linear.weight.data = original
        out.append((ppl / dense_ppl, float(torch.linalg.norm(h - h_dense) / torch.linalg.norm(h_dense))))
    hook.remove()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 10, 20, 29])
    parser.add_argument("--config-batch", type=int, nargs="+", default=[1, 7])
    parser.add_argument("--torch-baseline", action="store_true", help="Also time the PyTorch full-forward sweep.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    model = load_model(args.model)
    config, params = model.config, model.params
    windows = corpus_windows(model.tokenizer, "wiki", "evaluation", args.windows * args.seq_len, args.seq_len)
    grid = [Configuration(t, k, "magnitude", 0.5) for t in args.layers for k in config.site_kinds]
    warm = [Configuration(config.num_layers - 1, k, "magnitude", 0.5) for k in config.site_kinds]

    naive_sweep(config, params, windows, warm[:1])
    started = time.perf_counter()
    naive = naive_sweep(config, params, windows, grid)
    naive_s = time.perf_counter() - started
    result = {"model": args.model, "windows": args.windows, "seq_len": args.seq_len, "configurations": len(grid),
              "layers": args.layers, "backend": jax.default_backend(),
              "naive": {"seconds": naive_s, "per_minute": 60 * len(grid) / naive_s},
              "flop_ceiling": sweep_flop_ceiling(config, args.layers), "engine": {}}
    if args.torch_baseline:
        import torch
        from transformers import AutoModelForCausalLM

        reference = AutoModelForCausalLM.from_pretrained(str(model.source.parent), gguf_file=model.gguf_file,
                                                         dtype=torch.float32).eval()
        torch_sweep(reference, config, params, windows, warm[:1])
        started = time.perf_counter()
        baseline = torch_sweep(reference, config, params, windows, grid)
        torch_s = time.perf_counter() - started
        agree = max(abs(t[0] - n[0]) / n[0] for t, n in zip(baseline, naive, strict=True))
        result["torch"] = {"seconds": torch_s, "per_minute": 60 * len(grid) / torch_s,
                           "threads": torch.get_num_threads(), "max_relative_ppl_ratio_difference_vs_naive": agree}
        print(f"PyTorch full forward per configuration: {60 * len(grid) / torch_s:.1f} configs/min "
              f"(ppl ratios agree with the JAX naive side to {agree:.1e})")
    for batch in args.config_batch:
        with tempfile.TemporaryDirectory() as tmp:
            run_sweep(config, params, windows, warm[:batch], Path(tmp) / "warm.jsonl", config_batch=batch)
            started = time.perf_counter()
            records = run_sweep(config, params, windows, grid, Path(tmp) / "s.jsonl", config_batch=batch)
            engine_s = time.perf_counter() - started
        agree = max(abs(r["ppl_ratio"] - n[0]) / n[0] for r, n in zip(records, naive, strict=True))
        entry = {"seconds": engine_s, "per_minute": 60 * len(grid) / engine_s, "speedup_vs_naive": naive_s / engine_s,
                 "max_relative_ppl_ratio_difference": agree}
        if "torch" in result:
            entry["speedup_vs_torch"] = result["torch"]["seconds"] / engine_s
        result["engine"][f"config_batch={batch}"] = entry
        vs_torch = f", {entry['speedup_vs_torch']:.2f}x vs PyTorch" if "torch" in result else ""
        print(f"config_batch={batch}: {60 * len(grid) / engine_s:.1f} configs/min vs naive "
              f"{60 * len(grid) / naive_s:.1f} -> {naive_s / engine_s:.2f}x (FLOP ceiling "
              f"{result['flop_ceiling']:.2f}x){vs_torch}; ppl ratios agree to {agree:.1e}")
    if args.out is not None:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
