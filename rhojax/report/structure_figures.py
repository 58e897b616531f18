"""Figures of the structure study: PNG files drawn with matplotlib's Agg backend from its summary."""

from __future__ import annotations

from pathlib import Path

from rhojax.report.plotting import plt, save_png


def r2_through_depth(path: Path, single: list[dict], model: str) -> Path:
    """R^2 of the single-block affine maps (evaluation tokens), with the identity and update views."""
    fig, ax = plt.subplots(figsize=(7, 4))
    layers = [r["start"] for r in single]
    ax.plot(layers, [r["r2"] for r in single], "o-", label="affine map h_t -> h_{t+1}")
    ax.plot(layers, [r["r2_identity"] for r in single], "s--", label="identity h_{t+1} = h_t")
    ax.plot(layers, [r["r2_update"] for r in single], "^:", label="affine map, update h_{t+1} - h_t")
    ax.set(xlabel="block t", ylabel="R^2 (evaluation tokens)", title=f"{model}: block linearity through depth")
    ax.set_ylim(min(-0.05, *(r["r2_update"] for r in single)), 1.02)
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.legend()
    return save_png(fig, path)


def overlap_through_depth(path: Path, layers: list[dict], model: str) -> Path:
    """Variance / importance subspace overlap and cross capture through depth."""
    fig, ax = plt.subplots(figsize=(7, 4))
    t = [r["layer"] for r in layers]
    k = layers[0]["k"]
    ax.plot(t, [r["overlap"] for r in layers], "o-", label=f"overlap ||U_var^T U_imp||^2 / k (k={k})")
    ax.plot(t, [r["gradient_in_variance"] for r in layers], "s--", label="gradient energy in variance subspace")
    ax.plot(t, [r["variance_in_importance"] for r in layers], "^:", label="variance in importance subspace")
    ax.plot(t, [r["variance_in_variance"] for r in layers], color="C0", lw=0.8, alpha=0.5,
            label="variance in variance subspace")
    ax.plot(t, [r["gradient_in_importance"] for r in layers], color="C1", lw=0.8, alpha=0.5,
            label="gradient energy in importance subspace")
    ax.plot(t, [r["chance_overlap"] for r in layers], color="grey", lw=1, label="chance overlap k / D")
    ax.set(xlabel="state h_t", ylabel="fraction", ylim=(0, 1.02), title=f"{model}: variance vs importance")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def easy_tokens_through_depth(path: Path, early: dict, model: str) -> Path:
    """Share of tokens whose logit-lens top-1 already equals the final top-1, through depth."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(early["agreement"], "o-", label="lens top-1 = final top-1")
    ax.plot(early["settled"], "s-", label="settled (equal here and at every later state)")
    for tau, values in early["confident_agreement"].items():
        ax.plot(values, ":", label=f"agree with confidence >= {tau}")
    ax.set(xlabel="state h_t", ylabel="share of tokens", ylim=(0, 1.02), title=f"{model}: easy tokens (logit lens)")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def replacement_perplexity(path: Path, records: list[dict], dense: float, model: str) -> Path:
    """Perplexity after replacing spans of m blocks by one affine map, by first replaced block."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for method, length in sorted({(r["method"], r["length"]) for r in records}):
        rs = sorted((r for r in records if (r["method"], r["length"]) == (method, length)), key=lambda r: r["start"])
        style = "o-" if method == "direct" else "x:"
        label = f"{length} block(s)" if length == 1 else f"{length} blocks, {method} map"
        ax.plot([r["start"] for r in rs], [r["perplexity"] for r in rs], style, ms=3, label=label)
    ax.axhline(dense, color="black", lw=1, label=f"dense {dense:.2f}")
    ax.set(xlabel="first replaced block t", ylabel="perplexity (log scale)", yscale="log",
           title=f"{model}: linear replacement")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def ablation_loss(path: Path, records: list[dict], model: str) -> Path:
    """NLL increase per token after mean-ablating each k-dimensional subspace at state t."""
    fig, ax = plt.subplots(figsize=(7, 4))
    rs = sorted(records, key=lambda r: r["layer"])
    for name in ("variance", "importance", "random"):
        ax.plot([r["layer"] for r in rs], [r["delta_nll"][name] for r in rs], "o-", ms=3, label=f"{name} subspace")
    ax.set(xlabel="state h_t", ylabel="NLL increase per token (nats)", yscale="symlog",
           title=f"{model}: projecting out subspaces")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def exit_tradeoff(path: Path, early: dict, dense: float, model: str) -> Path:
    """Compute saving against perplexity for the oracle and the confidence exit policies."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, marker in (("oracle_exit", "o-"), ("confidence_exit", "s--")):
        pts = early[name]
        label = name.replace("_", " ")
        ax.plot([p["compute_saving"] for p in pts], [p["perplexity"] for p in pts], marker, label=label)
        for p in pts:
            ax.annotate(f"{p['threshold']:g}", (p["compute_saving"], p["perplexity"]), fontsize=6)
    ax.axhline(dense, color="black", lw=1, label=f"dense {dense:.2f}")
    ax.set(xlabel="share of block passes skipped", ylabel="perplexity (log scale)", yscale="log",
           title=f"{model}: early exit (labels: confidence threshold)")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def draw_structure_figures(folder: Path, summary: dict) -> list[Path]:
    """Every figure of a structure summary (:func:`rhojax.structure.study.run_structure_study`) into ``folder``."""
    folder, name = Path(folder), summary.get("model", "model")
    dense, early = summary["dense_perplexity"], summary["early_exit"]
    paths = [
        r2_through_depth(folder / "r2_through_depth.png", [r for r in summary["fits"] if r["length"] == 1], name),
        overlap_through_depth(folder / "overlap_through_depth.png", summary["subspaces"], name),
        easy_tokens_through_depth(folder / "easy_tokens_through_depth.png", early, name),
        replacement_perplexity(folder / "replacement_perplexity.png", summary["replacement"], dense, name),
        exit_tradeoff(folder / "early_exit_tradeoff.png", early, dense, name),
    ]
    if summary["ablation"]:
        paths.append(ablation_loss(folder / "ablation_loss.png", summary["ablation"], name))
    return paths
