"""Figures of a sensitivity sweep (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rhojax.report.plotting import plt, save_png


def sensitivity_heatmap(ratios: np.ndarray, kinds: Sequence[str], title: str, path: str | Path) -> Path:
    """Layer x kind heatmap of ``log10(ppl ratio)`` (rows: layers, columns: kinds)."""
    values = np.log10(np.clip(ratios, 1e-12, None))
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(kinds), 1.5 + 0.22 * ratios.shape[0]))
    image = ax.imshow(values, aspect="auto", cmap="magma_r", interpolation="nearest")
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set_yticks(range(0, ratios.shape[0], max(1, ratios.shape[0] // 15)))
    ax.set_xlabel("matrix kind")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="log10(ppl compressed / ppl dense)")
    return save_png(fig, path)


def hierarchy_chart(medians: Mapping[str, Mapping[str, float]], title: str, path: str | Path) -> Path:
    """Grouped bars of the median ``ratio - 1`` per kind (log scale), one group per label (method)."""
    labels = list(medians)
    kinds = list(next(iter(medians.values())))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        excess = [max(medians[label].get(k, np.nan) - 1.0, 1e-6) for k in kinds]
        ax.bar(np.arange(len(kinds)) + i * width, excess, width, label=label)
    ax.set_xticks(np.arange(len(kinds)) + width * (len(labels) - 1) / 2, kinds)
    ax.set_yscale("log")
    ax.set_ylabel("median over layers of (ppl ratio - 1)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def fragility_scatter(points: Sequence[Mapping], title: str, path: str | Path) -> Path:
    """CFI (x) against the uniform-compression perplexity ratio (y, log scale), one labelled point per map."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for p in points:
        ax.scatter(p["cfi"], p["uniform_ratio"])
        ax.annotate(f"{p['model']}\n{p['map']}", (p["cfi"], p["uniform_ratio"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_yscale("log")
    ax.margins(x=0.3, y=0.2)  # room for the labels
    ax.set_xlabel("CFI: mean log10 ppl ratio, one matrix at a time")
    ax.set_ylabel("ppl ratio, every matrix compressed")
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def draw_sweep_figures(folder: str | Path, summary: Mapping) -> list[Path]:
    """Every figure of a sweep summary: one heatmap per map and the hierarchy chart."""
    folder = Path(folder)
    model = summary.get("model", "")
    paths = []
    medians = {}
    for label, m in summary["maps"].items():
        ratios = np.array(m["ratio"], dtype=float)
        paths.append(sensitivity_heatmap(ratios, m["kinds"], f"{model}: {label}, one matrix compressed at a time",
                                         folder / f"heatmap_{m['method']}_{m['level']:g}.png"))
        medians[label] = {h["kind"]: h["median_ratio"] for h in m["hierarchy"]}
    if medians:
        kinds = next(iter(summary["maps"].values()))["kinds"]
        ordered = {label: {k: med[k] for k in kinds if k in med} for label, med in medians.items()}
        paths.append(hierarchy_chart(ordered, f"{model}: hierarchy of kinds", folder / "hierarchy.png"))
    return paths
