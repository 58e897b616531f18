"""The four-model page computes its agreement and its claims from the data it is given."""

from __future__ import annotations

import itertools
import math

from tests.test_results_render import _pages

KINDS = ["q", "k", "v", "o", "gate", "up", "down"]


def _map(cfi: float, uniform: float, medians: dict[str, float], spread: float) -> dict:
    hierarchy = [{"kind": k, "median_ratio": v} for k, v in sorted(medians.items(), key=lambda kv: -kv[1])]
    return {"cfi": cfi, "uniform_ratio": uniform, "hierarchy": hierarchy, "spread": spread, "max_ratio": 1.5,
            "max_site": [3, hierarchy[0]["kind"]], "sites": 42}


def _findings(model: str, maps: dict[str, dict]) -> dict:
    settings = {"tokens": 768, "seq_len": 256, "calib_tokens": 2048, "seed": 0}
    provenance = {"command": "x", "commit": "abcdef1", "rhojax": "0", "packages": {},
                  "machine": {"cores": 2, "cpu": "cpu", "backend": "cpu"}}
    return {"model": model, "provenance": provenance, "wall_seconds": 60.0 * len(maps),
            "studies": {f"sweep_{label.split('@')[0]}": {"maps": {label: m}, "dense_ppl": 10.0, "scored_tokens": 765,
                                                         "settings": settings, "wall_seconds": 60.0,
                                                         "provenance": {**provenance, "command": f"run {label}"}}
                        for label, m in maps.items()}}


def _tau(a: list[float], b: list[float]) -> float:
    """Kendall tau-a (no ties here): (concordant - discordant) / pairs, written out."""
    pairs = list(itertools.combinations(range(len(a)), 2))
    signs = [(a[i] - a[j]) * (b[i] - b[j]) for i, j in pairs]
    return (sum(s > 0 for s in signs) - sum(s < 0 for s in signs)) / len(pairs)


def _p_greater(a: list[float], b: list[float]) -> float:
    """The share of the orders of ``b`` whose tau with ``a`` is at least the observed one (exact, by enumeration)."""
    observed = _tau(a, b)
    taus = [_tau(a, list(order)) for order in itertools.permutations(b)]
    return sum(t >= observed - 1e-12 for t in taus) / len(taus)


def test_models_page_tau_per_map_and_claims():
    mlp_first = dict(zip(KINDS, [1.001, 1.0, 1.002, 1.003, 1.01, 1.02, 1.015], strict=True))
    attention_first = dict(zip(KINDS, [1.03, 1.0, 1.002, 1.003, 1.01, 1.001, 1.015], strict=True))
    cfis, uniforms = [0.001, 0.004, 0.002], [2.0, 3.0, 5.0]  # the CFI misorders the last two models
    models = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b"]
    data = {f"findings_{m}": _findings(m, {"wanda@0.5": _map(c, u, mlp_first if i != 1 else attention_first, 1.1),
                                           "magnitude@0.5": _map(c * 2, u * 2, mlp_first, 1.3 if i != 2 else 1.05)})
            for i, (m, c, u) in enumerate(zip(models, cfis, uniforms, strict=True))}
    page = _pages("models").models_page(data)
    tau = f"{_tau(cfis, uniforms):.3g}"
    assert tau == "0.333"
    p = f"{_p_greater(cfis, uniforms):.3g}"
    assert p == "0.5"  # 3 of the 6 orders of three models reach tau >= 1/3
    assert f"| wanda@0.5 | 3 | {tau} | {p} | `smollm2-135m` < `qwen2.5-coder-0.5b` < `gemma3-270m` | " in page
    assert f"| magnitude@0.5 | 3 | {tau} | {p} |" in page
    assert "| `qwen2.5-coder-1.5b` | wanda@0.5 | not measured |" in page
    # the interaction: the all-at-once log ratio over the sum of the 42 single-site log ratios (CFI x 42)
    interaction = math.log10(uniforms[1]) / (cfis[1] * 42)
    assert f"| `gemma3-270m` | wanda@0.5 | {cfis[1]:.4g} | x{uniforms[1]:.4g} | {interaction:.3g} |" in page
    # the claims on every model, in one table (no profile or depth here: those claims are not measured)
    assert "| MLP above attention (wanda@0.5) | holds | fails | holds | not measured |" in page
    assert "| Wanda spread below magnitude's | holds | holds | fails | not measured |" in page
    assert "| rho removes better than BI | not measured | not measured | not measured | not measured |" in page
    headline = _pages("index").index(data)
    assert f"wanda@0.5: Kendall tau {tau} over 3 models (exact one-sided p {p})" in headline
    assert "No map's agreement is beyond chance at this number of models." in headline
    gemma = page.split("### `gemma3-270m`")[1].split("###")[0]
    assert "Hierarchy (wanda@0.5): the three most sensitive kinds are q, down, gate; MLP matrices above attention: " \
           "**fails**" in gemma
    assert "Hierarchy (magnitude@0.5): the three most sensitive kinds are up, down, gate; MLP matrices above " \
           "attention: **holds**" in gemma
    assert "activation-aware scores shrink the spread: **holds**" in gemma  # 1.1 < 1.3
    # each study of a findings file names its own command
    assert "- `sweep_wanda`: `run wanda@0.5` at commit `abcdef1`" in gemma
    assert "- `sweep_magnitude`: `run magnitude@0.5` at commit `abcdef1`" in gemma
    qwen = page.split("### `qwen2.5-coder-0.5b`")[1].split("###")[0]
    assert "activation-aware scores shrink the spread: **fails**" in qwen  # 1.1 > 1.05


def test_a_findings_map_replaces_the_main_job_map_of_the_same_label():
    report = {"model": {"model": "smollm2-135m"},
              "sensitivity": {"maps": {"wanda@0.5": _map(0.5, 9.0, {"up": 1.1}, 1.0)}, "dense_ppl": 11.0,
                              "scored_tokens": 765},
              "settings": {"sensitivity": {"tokens": 768, "seq_len": 256, "calib_tokens": 2048, "seed": 0}}}
    data = {"analyze_smollm2-135m_quick": report,
            "findings_smollm2-135m": _findings("smollm2-135m", {"wanda@0.5": _map(0.25, 4.0, {"up": 1.1}, 1.0)})}
    maps = _pages("models").model_maps(data)
    assert maps["smollm2-135m"]["wanda@0.5"]["map"]["cfi"] == 0.25
    assert maps["smollm2-135m"]["wanda@0.5"]["source"] == "findings_smollm2-135m"
    del data["findings_smollm2-135m"]
    assert _pages("models").model_maps(data)["smollm2-135m"]["wanda@0.5"]["source"] == "analyze_smollm2-135m_quick"
