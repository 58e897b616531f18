"""Structure-analysis speed: reusing cached clean states against recomputing the clean prefix.

Both variants compute, for every layer t, the mean NLL after mean-ablating a k-dimensional subspace
of ``h_t`` (the inner loop of ``rhojax structure``), on the same windows in one run:

- baseline: a full forward per layer, with the ablation applied inside the scan at layer t (what a
  hook-based implementation does: the clean prefix blocks 0..t-1 are recomputed every time);
- rhojax: one clean forward caches ``h_0..h_L``; each layer then runs only blocks t..L-1 from the
  cached ``h_t`` (``ablation_nll``).

Also times the one-backward-pass gradients of every state (``hidden_and_gradients``) against one
backward pass per layer. Compile calls are excluded (each variant is warmed up first). Result: speed
ratios, never absolute claims.

    .venv/bin/python benchmarks/bench_structure.py [--windows 2 --seq-len 256]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp

from rhojax.data.windows import corpus_windows
from rhojax.eval.perplexity import token_nll
from rhojax.io.resolve import load_model
from rhojax.models.transformer import block, default_positions, embed, unembed
from rhojax.report.jsonio import write_json
from rhojax.structure.hidden import collect_hidden, hidden_and_gradients
from rhojax.structure.subspaces import ablation_nll, mean_ablate, random_basis


@functools.partial(jax.jit, static_argnames="config")
def full_forward_ablated(config, params, tokens, layer, basis, mean):
    """Summed NLL with the ablation applied at ``layer`` inside a full forward (the baseline)."""
    positions = default_positions(tokens)

    def step(carry, xs):
        h, t = carry
        h = jnp.where(t == layer, mean_ablate(h, basis, mean), h)
        return (block(config, xs, h, positions), t + 1), None

    (h, t), _ = jax.lax.scan(step, (embed(config, params, tokens, positions), 0), params["blocks"])
    h = jnp.where(t == layer, mean_ablate(h, basis, mean), h)
    return token_nll(unembed(config, params, h), tokens).sum()


@functools.partial(jax.jit, static_argnames="config")
def gradient_at(config, params, tokens, layer):
    """``d loss / d h_layer`` by its own forward and backward pass (the per-layer baseline)."""
    positions = default_positions(tokens)

    def loss(offset):
        def step(carry, xs):
            h, t = carry
            h = h + jnp.where(t == layer, offset, 0.0)
            return (block(config, xs, h, positions), t + 1), None

        (h, t), _ = jax.lax.scan(step, (embed(config, params, tokens, positions), 0), params["blocks"])
        h = h + jnp.where(t == layer, offset, 0.0)
        return token_nll(unembed(config, params, h), tokens).sum()

    return jax.grad(loss)(jnp.zeros((*tokens.shape, config.hidden_size)))


def timed(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--out", default="results/structure/benchmark.json")
    args = parser.parse_args()
    model = load_model(args.model)
    config, params = model.config, model.params
    windows = corpus_windows(model.tokenizer, "wiki", "evaluation", args.windows * args.seq_len, args.seq_len)
    tokens = jnp.asarray(windows)
    layers = range(config.num_layers + 1)
    basis = jnp.asarray(random_basis(jax.random.PRNGKey(0), config.hidden_size, args.k), jnp.float32)
    mean = jnp.zeros(config.hidden_size)

    hidden = collect_hidden(config, params, windows, args.windows)  # warm-up (compiles)
    ablation_nll(config, params, hidden, windows, 0, basis, mean, args.windows)
    full_forward_ablated(config, params, tokens, 0, basis, mean)
    cached = timed(lambda: [collect_hidden(config, params, windows, args.windows)] + [
        ablation_nll(config, params, hidden, windows, t, basis, mean, args.windows) for t in layers])
    full = timed(lambda: [full_forward_ablated(config, params, tokens, t, basis, mean) for t in layers])

    hidden_and_gradients(config, params, tokens)
    gradient_at(config, params, tokens, 0)
    one_pass = timed(lambda: hidden_and_gradients(config, params, tokens))
    per_layer = timed(lambda: [gradient_at(config, params, tokens, t) for t in layers])

    result = {
        "model": args.model, "windows": args.windows, "seq_len": args.seq_len, "k": args.k,
        "backend": jax.default_backend(),
        "ablation_sweep_s": {"cached_prefix": cached, "full_forward": full, "speedup": full / cached},
        "gradients_s": {"one_backward_pass": one_pass, "per_layer": per_layer, "speedup": per_layer / one_pass},
    }
    write_json(args.out, result)
    print(result)


if __name__ == "__main__":
    main()
