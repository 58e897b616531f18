"""Figures of ``rhojax profile``: PNG files drawn with matplotlib's Agg backend from ``profile.json``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rhojax.report.plotting import plt, save_png


def _band(ax, x, summary: dict, name: str, label: str, style: str) -> None:
    """Line of ``summary[name]`` with its 95% interval ``summary[name + '_ci']`` as a band."""
    ci = np.asarray(summary[f"{name}_ci"], dtype=float)
    line, = ax.plot(x, summary[name], style, label=label, ms=3)
    ax.fill_between(x, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.25)


def rho_alpha_beta(path: Path, s: dict) -> Path:
    """rho per layer (aggregate and token-wise, 95% bands over samples), rho_max, and alpha/beta."""
    p = s["profile"]
    x = np.arange(s["layers"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    _band(top, x, p, "rho", "rho aggregate (Frobenius, BOS included)", "o-")
    _band(top, x, p, "token_rho_mean", "rho token-wise, mean over non-BOS tokens", "s-")
    _band(top, x, p, "token_rho_median", "rho token-wise, median", "^:")
    top.plot(x, p["sink_rho"], "x--", label="rho at the BOS (sink) position", ms=4)
    if "rho_linear" in p:
        top.plot(x, p["rho_linear"], "k.", label="rho linearised (jvp)", ms=4)
    top.plot(x, s["jacobian"]["rho_max"], "v-", label="rho_max (Jacobian power iteration)", ms=3)
    top.axhline(1.0, color="grey", lw=0.6)
    top.set(yscale="log", ylabel="rho_t", title=f"{s['model']}: contraction profile at eps = {p['eps']:g}")
    top.legend(fontsize=7)
    bottom.plot(x, p["alpha"], "o-", label="alpha aggregate ||h_{t+1}|| / ||h_t||", ms=3)
    bottom.plot(x, p["token_alpha"], "s-", label="alpha token-wise (mean, non-BOS)", ms=3)
    _band(bottom, x, p, "beta", "beta aggregate ||e_{t+1}|| / ||e_t||", "^-")
    bottom.axhline(1.0, color="grey", lw=0.6)
    bottom.set(yscale="log", xlabel="layer t", ylabel="growth")
    bottom.legend(fontsize=7)
    return save_png(fig, path)


def rho_sweep(path: Path, s: dict) -> Path:
    """Aggregate and token-wise rho per layer for every eps of the sweep."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for p in s["sweep"]:
        left.plot(p["rho"], "o-", ms=2, label=f"eps {p['eps']:g}")
        right.plot(p["token_rho_mean"], "o-", ms=2, label=f"eps {p['eps']:g}")
    for ax, name in ((left, "aggregate"), (right, "token-wise mean")):
        ax.axhline(1.0, color="grey", lw=0.6)
        ax.set(yscale="log", xlabel="layer t", title=f"rho_t, {name}")
    left.set_ylabel("rho_t")
    right.legend(fontsize=7)
    return save_png(fig, path)


def lyapunov(path: Path, s: dict) -> Path:
    """V_t through depth for an error injected at layer 0: rho recursion vs the measured track."""
    v = s["lyapunov"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(v["predicted"], "o-", ms=3, label="predicted V_{t+1} = rho_t^2 V_t")
    ax.plot(v["measured"], "s-", ms=3, label="measured ||h'_t - h_t||^2 / ||h_t||^2")
    ax.set(yscale="log", xlabel="layer t", ylabel="V_t",
           title=f"{s['model']}: Lyapunov function, injection at layer 0 (V_0 = {v['v0']:g})")
    ax.legend()
    return save_png(fig, path)


def _scatter(ax, predicted, measured, corr: dict, label: str, marker: str) -> None:
    ci = corr["spearman_ci"]
    ax.scatter(predicted, measured, s=14, marker=marker,
               label=f"{label}: Spearman {corr['spearman']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]")


def drift(path: Path, s: dict) -> Path:
    """Predicted vs measured drift: Gaussian injections (dense, after compression) and compression-induced."""
    d, post, comp = s["drift"], s["post_compression"], s["compression_induced"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    _scatter(left, d["predicted"], d["measured"], d["correlation"], "dense model", "o")
    _scatter(left, d["predicted_tokenwise_rho"], d["tokenwise"]["measured"], d["tokenwise"]["correlation"],
             "dense model, token-wise", "x")
    _scatter(left, post["predicted_dense_rho"], post["measured"], post["correlation_dense_rho"],
             "compressed model, dense rho", "s")
    _scatter(left, post["predicted_compressed_rho"], post["measured"], post["correlation_compressed_rho"],
             "compressed model, re-measured rho", "^")
    left.set(xscale="log", yscale="log", xlabel="predicted eps * A_t", ylabel="measured ||h'_L - h_L|| / ||h_L||",
             title=f"Gaussian injection at layer t (eps {d['eps']:g})")
    left.legend(fontsize=7)
    _scatter(right, comp["predicted_drift"], comp["measured_drift"], comp["correlation"], "compress block t", "o")
    for t, (x, y) in enumerate(zip(comp["predicted_drift"], comp["measured_drift"], strict=True)):
        right.annotate(str(t), (x, y), fontsize=6)
    right.set(xscale="log", yscale="log", xlabel="predicted (||c_t|| / ||h_{t+1}||) * A_{t+1}",
              ylabel="measured drift", title="compressing one block alone (magnitude)")
    right.legend(fontsize=7)
    return save_png(fig, path)


def absorption(path: Path, s: dict) -> Path:
    """Absorption coefficient r_l per layer for every eps (aggregate and token-wise), and the transition."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    right = axes[2]
    for ax, name, version in ((axes[0], "absorption", "aggregate"), (axes[1], "absorption_tokenwise", "token-wise")):
        a = s[name]
        for eps, r in zip(a["eps"], a["r"], strict=True):
            ax.plot(r, "o-", ms=3, label=f"eps {eps:g}")
        ax.axhline(1.0, color="grey", lw=0.6)
        ax.set(yscale="log", xlabel="injection layer l", ylabel="r_l = E[R_L / R_l]",
               title=f"{s['model']}: absorption ({version})")
        ax.legend(fontsize=7)
        right.plot(a["eps"], a["absorbing_fraction"], "o-", label=f"{version}: fraction of layers with r_l < 1")
        right.plot(a["eps"], np.exp(a["mean_log_r"]), "s--", label=f"{version}: geometric mean of r_l")
    right.axhline(1.0, color="grey", lw=0.6)
    right.set(xscale="log", xlabel="relative perturbation eps", title="amplification -> absorption")
    right.legend(fontsize=8)
    return save_png(fig, path)


FIGURES: dict[str, Callable[[Path, dict], Path]] = {
    "rho_alpha_beta": rho_alpha_beta,
    "rho_sweep": rho_sweep,
    "lyapunov": lyapunov,
    "drift": drift,
    "absorption": absorption,
}


#: The summary entry each figure draws (a streamed profile has no drift, absorption or Lyapunov entries).
FIGURE_DATA = {"rho_alpha_beta": "jacobian", "rho_sweep": "sweep", "lyapunov": "lyapunov", "drift": "drift",
               "absorption": "absorption"}


def draw_profile_figures(folder: Path, summary: dict) -> list[Path]:
    """Every figure of a profile summary whose data it holds, as ``folder/<name>.png``."""
    return [draw(Path(folder) / f"{name}.png", summary) for name, draw in FIGURES.items()
            if FIGURE_DATA[name] in summary]
