"""PyTorch + transformers implementations of rhojax's algorithms, written to be fast: the baselines of
:mod:`benchmarks.run`.

- :func:`clean_states`: one forward with hooks caching every decoder layer's input ``h_t`` (and the
  keyword arguments the model hands its layers: rotary tables, mask), and the last output ``h_L``.
- :func:`cached_profile`: the contraction profile by the same algorithm as ``rhojax.rho_profile``:
  cached clean states, each layer called once on the K perturbed copies of all windows (2K when
  both versions are asked), the cached ``h_{t+1}`` reused, float32 statistics.
- :func:`cached_sweep`: the sensitivity sweep as rhojax runs it: each configuration starts from the
  cached ``h_t`` of its layer and runs only the suffix, float32 log-softmax.

The hook-based baseline (a full forward per layer per sample) is :func:`benchmarks.bench_profile.torch_profile`.
"""

from __future__ import annotations

import numpy as np
import torch


def _output(out):
    return out[0] if isinstance(out, tuple) else out


def clean_states(model, ids: torch.Tensor) -> tuple[list[torch.Tensor], dict]:
    """``[h_0, ..., h_L]`` (each (N, T, D)) of one clean forward and the layers' keyword arguments."""
    layers = model.model.layers
    states: list[torch.Tensor | None] = [None] * (len(layers) + 1)
    kwargs: dict = {}

    def pre(t):
        def hook(module, args, kw):
            states[t] = args[0] if args else kw["hidden_states"]
            if t == 0:
                kwargs.update({k: v for k, v in kw.items() if k not in ("hidden_states", "cache", "past_key_values",
                                                                         "use_cache")})
        return hook

    handles = [layer.register_forward_pre_hook(pre(t), with_kwargs=True) for t, layer in enumerate(layers)]
    handles.append(layers[-1].register_forward_hook(lambda m, a, out: states.__setitem__(-1, _output(out))))
    try:
        model.model(ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return states, kwargs


def _norms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x.float(), dim=-1)


def _frobenius(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x.float(), dim=(-3, -2, -1))


@torch.no_grad()
def cached_profile(model, windows: np.ndarray, samples: int, eps: float, seed: int = 0,
                   versions: tuple[str, ...] = ("aggregate", "tokenwise"), device: str = "cpu") -> dict:
    """Aggregate rho (L, K) and/or token-wise mean rho over non-BOS tokens (L, K) by rhojax's algorithm."""
    ids = torch.tensor(np.asarray(windows), dtype=torch.long, device=device)
    states, kwargs = clean_states(model, ids)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = {v: [] for v in versions}
    for t, layer in enumerate(model.model.layers):
        h_in, h_out = states[t], states[t + 1]
        g = torch.randn((samples, *h_in.shape), generator=gen, device=device, dtype=h_in.dtype)
        e = {}
        if "aggregate" in versions:
            e["aggregate"] = g * (eps * _frobenius(h_in) / _frobenius(g))[:, None, None, None].to(g.dtype)
        if "tokenwise" in versions:
            e["tokenwise"] = g * (eps * _norms(h_in) / _norms(g))[..., None].to(g.dtype)
        x = (h_in + torch.cat([e[v] for v in versions])).flatten(0, 1)  # (V K N, T, D)
        d = (_output(layer(x, **kwargs)).unflatten(0, (-1, h_in.shape[0])) - h_out).float()
        alpha = _frobenius(h_out) / _frobenius(h_in)
        for i, v in enumerate(versions):
            dv = d[i * samples:(i + 1) * samples]
            if v == "aggregate":
                out[v].append((_frobenius(dv) / _frobenius(e[v]) / alpha).cpu().numpy())
            else:
                tok = _norms(dv) / _norms(e[v]) / (_norms(h_out) / _norms(h_in))  # (K, N, T)
                out[v].append(tok[:, :, 1:].mean(dim=(1, 2)).cpu().numpy())
    return {v: np.stack(r) for v, r in out.items()}


def magnitude_prune(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Zero the ``round(sparsity * size)`` smallest-magnitude entries of ``w`` (rhojax's matrix-scope rule)."""
    drop = round(sparsity * w.numel())
    if drop == 0:
        return w.clone()
    threshold = w.abs().flatten().kthvalue(drop).values
    return torch.where(w.abs() > threshold, w, torch.zeros_like(w))


#: rhojax site kind -> the transformers submodule of a llama-family decoder layer.
MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
           "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


@torch.no_grad()
def cached_sweep(model, windows: np.ndarray, sites: list[tuple[int, str]], sparsity: float,
                 device: str = "cpu") -> list[tuple[float, float]]:
    """(perplexity ratio, final-state drift) per (layer, kind) site pruned alone, from the cached ``h_layer``."""
    ids = torch.tensor(np.asarray(windows), dtype=torch.long, device=device)
    states, kwargs = clean_states(model, ids)
    layers = model.model.layers

    def nll(h_last):
        logits = model.lm_head(model.model.norm(h_last))[:, :-1].float()
        return -torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).sum()

    dense = float(nll(states[-1]))
    scored = ids.shape[0] * (ids.shape[1] - 1)
    out = []
    for layer, kind in sites:
        linear = layers[layer].get_submodule(MODULES[kind])
        original = linear.weight.data
        linear.weight.data = magnitude_prune(original, sparsity)
        h = states[layer]
        try:
            for block in layers[layer:]:
                h = _output(block(h, **kwargs))
        finally:
            linear.weight.data = original
        drift = float(_frobenius(h - states[-1]) / _frobenius(states[-1]))
        out.append((float(np.exp((float(nll(h)) - dense) / scored)), drift))
    return out


@torch.no_grad()
def batched_forward(model, windows: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """Logits (N, T, V) of all windows in one batch."""
    return model(torch.tensor(np.asarray(windows), dtype=torch.long, device=device), use_cache=False).logits
