"""Figures of the depth-pruning and allocation study: PNG files (matplotlib Agg) drawn from its summary."""

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


def perplexity_vs_removed(path: Path, rows: list[dict], dense: float, model: str) -> Path:
    """Evaluation perplexity (95% interval as error bars) against the number of removed layers, per criterion."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in dict.fromkeys(r["criterion"] for r in rows):
        pts = sorted((r for r in rows if r["criterion"] == name), key=lambda r: r["k"])
        ppl = np.array([dense] + [r["perplexity"] for r in pts], float)
        ci = np.array([[dense, dense]] + [r.get("perplexity_ci") or [np.nan, np.nan] for r in pts], float)
        ax.errorbar([0] + [r["k"] for r in pts], ppl, yerr=np.abs(ci.T - ppl), fmt="o-", capsize=2, label=name)
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


def draw_depth_figures(folder: Path, summary: dict) -> list[Path]:
    """Every figure of a depth-study summary (:func:`rhojax.depth.study.run_depth_study`) into ``folder``."""
    folder, name = Path(folder), summary.get("model", "model")
    paths = [layer_scores(folder / "layer_scores.png", summary["signals"], name)]
    if summary["depth"]:
        paths.append(perplexity_vs_removed(folder / "depth_perplexity.png", summary["depth"],
                                           summary["dense"]["perplexity"], name))
    rows = summary["allocation"]
    for sparsity, method in dict.fromkeys((r["sparsity"], r["method"]) for r in rows):
        paths.append(schedules(folder / f"schedules_{method}_{round(sparsity * 100)}.png", rows, name, sparsity,
                               method))
    return paths
