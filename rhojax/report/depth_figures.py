"""Figures of the depth-pruning and allocation study: PNG files (matplotlib Agg) from result dicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rhojax.report.plotting import plt, save_png


def layer_scores(path: Path, signals: dict, model: str) -> Path:
    """``|rho_t - 1|`` (aggregate and token-wise) and Block Influence (all tokens and without BOS) per layer."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    layers = np.arange(len(signals["bi"]))
    top.plot(layers, np.abs(np.asarray(signals["rho_aggregate"]) - 1), "o-", label="|rho - 1| aggregate")
    top.plot(layers, np.abs(np.asarray(signals["rho_tokenwise"]) - 1), "s--", label="|rho - 1| token-wise")
    top.set(ylabel="|rho_t - 1|", yscale="log", title=f"{model}: depth-pruning scores (calibration split)")
    top.legend()
    bottom.plot(layers, signals["bi"], "o-", label="BI, all tokens")
    bottom.plot(layers, signals["bi_without_bos"], "s--", label="BI, BOS excluded")
    bottom.set(xlabel="layer t", ylabel="1 - mean cos(h_t, h_t+1)", yscale="log")
    bottom.legend()
    return save_png(fig, path)


def perplexity_vs_removed(path: Path, rows: list[dict], model: str) -> Path:
    """Evaluation perplexity against the number of removed layers, one line per criterion."""
    fig, ax = plt.subplots(figsize=(8, 5))
    dense = next(r["perplexity"] for r in rows if r["k"] == 0)
    for name in dict.fromkeys(r["criterion"] for r in rows if r["k"] > 0):
        pts = sorted((r["k"], r["perplexity"]) for r in rows if r["criterion"] == name)
        ax.plot([0] + [k for k, _ in pts], [dense] + [p for _, p in pts], "o-", label=name)
    ax.set(xlabel="layers removed", ylabel="perplexity (evaluation split)", yscale="log",
           title=f"{model}: physical layer removal")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def schedules(path: Path, rows: list[dict], model: str, sparsity: float, method: str) -> Path:
    """Per-layer sparsity of every schedule at one target (from allocation records)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        if r["sparsity"] == sparsity and r["method"] == method:
            ax.plot(r["ratios"], ".-", label=f"{r['schedule']} (ppl {r['perplexity']:.1f})")
    ax.axhline(sparsity, color="grey", lw=0.5)
    ax.set(xlabel="layer", ylabel="sparsity", title=f"{model}: layer-wise sparsity at {sparsity:.0%} mean ({method})")
    ax.legend(fontsize=8)
    return save_png(fig, path)
