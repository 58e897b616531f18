"""Contraction-profile speed: rhojax's ``rho_profile`` against a hook-based PyTorch + transformers baseline.

Both compute the aggregate rho_t of every layer for K Gaussian perturbations at relative size eps on
the same windows, on the same CPU, in one run. The baseline is written the way hook-based research
code does it: one clean forward with hooks caching every block's input and output, then, for every
layer and every sample, one full perturbed forward with a pre-hook adding ``e_t`` to the block's
input and a hook reading its output. rhojax reuses the cached ``h_t, h_{t+1}`` and runs one block per
layer with the K samples batched (and computes the token-wise version too; the jvp limit is off).
The rhojax compile call is timed separately. Result: a speed ratio, never an absolute claim.

    .venv/bin/python benchmarks/bench_profile.py [--windows 8 --seq-len 512 --samples 8]

``--random-weights`` times the same work on a SmolLM2-shaped model with random weights and random
tokens (saved as a Hugging Face folder for the PyTorch side): speed does not depend on the weight
values, and this mode needs no packaged asset, so it runs on machines the 98 MB GGUF cannot reach.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import numpy as np
import torch

from rhojax.data.windows import corpus_windows
from rhojax.io.resolve import load_model
from rhojax.io.save_hf import save_hf
from rhojax.models import ModelConfig, forward, init_params
from rhojax.propagation import rho_profile
from rhojax.report.jsonio import write_json


def _hidden_arg(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def _output(out):
    return out[0] if isinstance(out, tuple) else out


def torch_profile(model, windows: np.ndarray, samples: int, eps: float, seed: int, device: str = "cpu") -> np.ndarray:
    """Aggregate rho (L, K) by hooks: one full perturbed forward per layer per sample."""
    layers = model.model.layers
    ids = torch.tensor(windows, dtype=torch.long, device=device)
    clean_in, clean_out = {}, {}

    def cache(t):
        def pre(module, args, kwargs):
            clean_in[t] = _hidden_arg(args, kwargs).detach().clone()

        def post(module, args, kwargs, out):
            clean_out[t] = _output(out).detach().clone()

        return pre, post

    handles = []
    for t, layer in enumerate(layers):
        pre, post = cache(t)
        handles += [layer.register_forward_pre_hook(pre, with_kwargs=True),
                    layer.register_forward_hook(post, with_kwargs=True)]
    with torch.no_grad():
        model(ids)
    for h in handles:
        h.remove()

    gen = torch.Generator().manual_seed(seed)
    rho = np.zeros((len(layers), samples))
    for t, layer in enumerate(layers):
        h_in, h_out = clean_in[t], clean_out[t]
        alpha = float(h_out.norm() / h_in.norm())
        for k in range(samples):
            g = torch.randn(h_in.shape, generator=gen).to(device)
            e = g * (eps * h_in.norm() / g.norm())
            seen = {}

            def pre(module, args, kwargs, e=e):
                if args:
                    return (args[0] + e, *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": kwargs["hidden_states"] + e}

            def post(module, args, kwargs, out, seen=seen):
                seen["out"] = _output(out)

            handles = [layer.register_forward_pre_hook(pre, with_kwargs=True),
                       layer.register_forward_hook(post, with_kwargs=True)]
            with torch.no_grad():
                model(ids)  # the full network, as hook-based code runs it
            for h in handles:
                h.remove()
            rho[t, k] = float((seen["out"] - h_out).norm() / e.norm()) / alpha
    return rho


def random_smollm2_shaped(windows: int, seq_len: int, seed: int) -> tuple[ModelConfig, dict, np.ndarray]:
    """SmolLM2-135M's architecture with random weights, and random token windows starting with BOS (id 1)."""
    config = ModelConfig(family="llama", vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9,
                         num_kv_heads=3, head_dim=64, intermediate_size=1536, norm_eps=1e-5, rope_theta=1e5,
                         tie_embeddings=True, name="smollm2-135m-shaped")
    params = init_params(config, jax.random.key(seed))
    tokens = np.random.default_rng(seed).integers(2, config.vocab_size, size=(windows, seq_len)).astype(np.int32)
    tokens[:, 0] = 1
    return config, params, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--eps", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-device", default="cpu", help="Where the PyTorch baseline runs (cpu, cuda).")
    parser.add_argument("--random-weights", action="store_true", help="SmolLM2-shaped random model and tokens.")
    parser.add_argument("--out", default="results/benchmarks/profile.json")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM

    if args.random_weights:
        config, params, windows = random_smollm2_shaped(args.windows, args.seq_len, args.seed)
        folder = tempfile.mkdtemp(prefix="bench_profile_")
        save_hf(config, params, folder)
        load_reference = lambda: AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)  # noqa: E731
        args.model = "random weights, SmolLM2-135M shape"
    else:
        model = load_model(args.model)
        config, params = model.config, model.params
        windows = corpus_windows(model.tokenizer, "wiki", "calibration", args.windows * args.seq_len, args.seq_len)
        load_reference = lambda: AutoModelForCausalLM.from_pretrained(  # noqa: E731
            str(model.source.parent), gguf_file=model.gguf_file, dtype=torch.float32)
    key = jax.random.key(args.seed)

    def rhojax_run():
        _, hidden = forward(config, params, windows, return_hidden=True)
        return rho_profile(config, params, hidden, key, eps=args.eps, samples=args.samples, linearised=False)

    start = time.perf_counter()
    rhojax_run()
    compile_s = time.perf_counter() - start
    print(f"rhojax first call (compiles) {compile_s:.1f} s", flush=True)
    start = time.perf_counter()
    prof = rhojax_run()
    rhojax_s = time.perf_counter() - start

    print(f"rhojax {rhojax_s:.1f} s", flush=True)
    torch.manual_seed(args.seed)
    reference = load_reference().eval().to(args.torch_device)
    start = time.perf_counter()
    rho_torch = torch_profile(reference, windows, args.samples, args.eps, args.seed, args.torch_device)
    torch_s = time.perf_counter() - start

    ours, theirs = prof.rho.mean(axis=1), rho_torch.mean(axis=1)
    result = {
        "model": args.model, "windows": args.windows, "seq_len": args.seq_len, "tokens": args.windows * args.seq_len,
        "samples": args.samples, "eps": args.eps, "seed": args.seed, "layers": config.num_layers,
        "torch_threads": torch.get_num_threads(), "torch_device": args.torch_device,
        "jax_backend": jax.default_backend(),
        "rhojax_seconds": rhojax_s, "rhojax_first_call_seconds": compile_s, "torch_seconds": torch_s,
        "speedup": torch_s / rhojax_s,
        "rho_rhojax": ours, "rho_torch": theirs,
        "max_relative_difference_of_mean_rho": float(np.max(np.abs(ours / theirs - 1))),
    }
    write_json(args.out, result)
    print(f"{args.model}, {result['tokens']} tokens, K={args.samples}: rhojax {rhojax_s:.1f} s "
          f"(first call {compile_s:.1f} s), PyTorch hooks {torch_s:.1f} s -> {result['speedup']:.1f}x; "
          f"mean rho differs by at most {result['max_relative_difference_of_mean_rho']:.2%} (different samples)")


if __name__ == "__main__":
    main()
