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


SECTIONS: dict[str, Callable[[dict], dict]] = {
    "perplexity": perplexity_section,
    "profile": profile_section,
    "sensitivity": sensitivity_section,
}
