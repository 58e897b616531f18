"""The compact section each study contributes to ``report.json`` (the full summary stays in its folder)."""

from __future__ import annotations

from collections.abc import Callable


def _keep(d: dict, *keys: str) -> dict:
    return {k: d[k] for k in keys if k in d}


def _correlation(c: dict) -> dict:
    return _keep(c, "n", "spearman", "spearman_ci", "spearman_p", "pearson_log10", "pearson_log10_ci")


def perplexity_section(s: dict) -> dict:
    return _keep(s, "perplexity", "ci", "mean_nll", "scored_tokens", "windows", "seq_len", "settings")


def profile_section(s: dict) -> dict:
    p = s["profile"]
    return {
        "layers": s["layers"],
        "windows": s["windows"],
        "split": s["split"],
        "eps": p["eps"],
        "alpha": p["alpha"],
        "token_alpha": p["token_alpha"],
        **_keep(p, "rho", "rho_ci", "token_rho_mean", "token_rho_mean_ci", "token_rho_median", "sink_rho",
                "rho_linear", "downstream_aggregate", "downstream_tokenwise"),
        "rho_max": s["jacobian"]["rho_max"],
        "drift": {
            "aggregate": _correlation(s["drift"]["correlation"]),
            "tokenwise": _correlation(s["drift"]["tokenwise"]["correlation"]),
            "after_compression_dense_rho": _correlation(s["post_compression"]["correlation_dense_rho"]),
            "after_compression_compressed_rho": _correlation(s["post_compression"]["correlation_compressed_rho"]),
        },
        "absorption": {
            "eps": s["absorption"]["eps"],
            "r": s["absorption"]["r"],
            "token_r": s["absorption_tokenwise"]["token_r"],
            "absorbing_fraction": s["absorption"]["absorbing_fraction"],
        },
    }


def sensitivity_section(s: dict) -> dict:
    maps = {label: _keep(m, "method", "level", "sites", "complete", "hierarchy", "spread", "max_ratio",
                         "max_site", "min_ratio", "min_site", "cfi", "uniform_ratio", "kinds", "ratio",
                         "ratio_ci_low", "ratio_ci_high") for label, m in s["maps"].items()}
    return {**_keep(s, "dense_ppl", "scored_tokens", "eval_windows", "configurations", "layers"), "maps": maps}


def eval_section(s: dict) -> dict:
    return {"tasks": {name: _keep(t, "items", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "perplexity")
                      for name, t in s["tasks"].items()}}


def bounds_section(s: dict) -> dict:
    out = {}
    if "checker" in s:
        c = s["checker"]
        out["checker"] = {**_keep(c, "levels", "finished", "configurations", "evaluations", "violations", "by_method"),
                          "theorems": {k: _keep(v, "evaluations", "violations", "tightness")
                                       for k, v in c["theorems"].items()}}
    if "sites" in s:
        out["sites"] = _keep(s["sites"], "levels", "configurations", "violations", "by_kind", "spearman")
    return out


_ROW = ("perplexity", "perplexity_ci", "ratio", "ratio_ci", "scored_tokens", "mean_acc", "tasks")


def depth_section(s: dict) -> dict:
    return {
        "layers": s["layers"],
        "scored_tokens": s["scored_tokens"],
        "signals": s["signals"],
        "dense": _keep(s["dense"], *_ROW),
        "rows": [_keep(r, "criterion", "k", "removed_layers", *_ROW) for r in s["depth"]],
    }


def allocation_section(s: dict) -> dict:
    return {
        "scored_tokens": s["scored_tokens"],
        "dense": _keep(s["dense"], *_ROW),
        "rows": [_keep(r, "sparsity", "method", "schedule", "ratios", "realised_mean", *_ROW) for r in s["allocation"]],
    }


def structure_section(s: dict) -> dict:
    return {**_keep(s, "calibration_windows", "evaluation_windows", "scored_tokens", "dense_perplexity", "headline"),
            "replacement": [_keep(r, "start", "length", "method", "perplexity", "r2") for r in s["replacement"]]}


_PLAN_ROW = ("removed_layers", "action_counts", "budget_used", "predicted_delta_loss", "perplexity", "perplexity_ci",
             "ratio", "ratio_ci", "measured_delta_loss", "mean_acc", "skipped")


def plan_section(s: dict) -> dict:
    return {**_keep(s, "unit", "fraction", "best_baseline", "plan_vs_best_baseline", "plan_vs_best_baseline_ci",
                    "loss_curve", "depth_exponent", "candidates", "end_to_end"),
            "target": s["settings"]["target"], "plan": _keep(s["plan"], *_PLAN_ROW),
            "dense": _keep(s.get("dense", {}), "perplexity", "perplexity_ci"),
            "baselines": [{"name": r["name"], **_keep(r, *_PLAN_ROW)} for r in s.get("baselines", [])]}


#: report key -> (study whose summary it reads, compact section of that summary)
SECTIONS: dict[str, tuple[str, Callable[[dict], dict]]] = {
    "perplexity": ("perplexity", perplexity_section),
    "profile": ("profile", profile_section),
    "sensitivity": ("sensitivity", sensitivity_section),
    "eval": ("eval", eval_section),
    "bounds": ("bounds", bounds_section),
    "depth": ("depth", depth_section),
    "allocation": ("depth", allocation_section),
    "structure": ("structure", structure_section),
    "plan": ("plan", plan_section),
}
