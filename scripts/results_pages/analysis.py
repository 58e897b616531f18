"""The pages drawn from the main job's report (``analyze_<model>_<budget>.json``): contraction profile,
sensitivity, depth and allocation, structure and zero-shot accuracy."""

from __future__ import annotations

from collections.abc import Callable

from .common import HEADER, comparison_note, interval, md_table, num, source_note


def analysis(data: dict[str, dict]) -> tuple[str, dict] | None:
    """The main-job report with the largest budget among the data files (``analyze_<model>_<budget>``)."""
    order = {"paper": 3, "standard": 2, "quick": 1, "smoke": 0}
    found = [(order.get(d.get("budget"), -1), name, d) for name, d in data.items() if name.startswith("analyze_")]
    if not found:
        return None
    _, name, report = max(found)
    return name, report


def _no_analysis(title: str) -> str:
    return "\n".join([f"# {title}", "", HEADER, "", "No data yet: run `rhojax analyze smollm2-135m --budget "
                      "standard --out results/x` and copy its report.json to "
                      "docs/results/data/analyze_smollm2-135m_standard.json.", ""])


def analysis_page(title: str) -> Callable:
    """Decorate ``page(name, report) -> str`` into ``page(data) -> str`` reading the main-job report
    (a placeholder page when there is none)."""

    def decorate(page: Callable[[str, dict], str]) -> Callable[[dict[str, dict]], str]:
        def render(data: dict[str, dict]) -> str:
            found = analysis(data)
            return _no_analysis(title) if found is None else page(*found)

        return render

    return decorate


@analysis_page("Contraction profile")
def propagation(name: str, r: dict) -> str:
    p, model = r["profile"], r["model"]["model"]
    s = r["settings"]["profile"]
    rows = [(t, num(p["rho"][t]), interval(p["rho_ci"][t]), num(p["token_rho_mean"][t]),
             interval(p["token_rho_mean_ci"][t]), num(p["sink_rho"][t]), num(p["rho_max"][t]))
            for t in range(p["layers"])]
    d = p["drift"]
    corr_rows = [(k.replace("_", " "), num(v["spearman"], 3), interval(v["spearman_ci"], 3), num(v["n"]))
                 for k, v in d.items()]
    amp = r["answer"].get("amplifying_layers", {})
    absorb = p["absorption"]
    absorb_rows = [(num(e, 3), f"{num(100 * f, 3)}%", num(sum(rr) / len(rr), 4), num(sum(tr) / len(tr), 4))
                   for e, f, rr, tr in zip(absorb["eps"], absorb["absorbing_fraction"], absorb["r"], absorb["token_r"],
                                           strict=True)]
    lines = [
        "# Contraction profile", "", HEADER, "",
        f"Model `{model}`, budget `{r['budget']}`: {p['windows']} windows of {s['seq_len']} tokens from the "
        f"{p['split']} split of `{s['text']}`, K = {s['samples']} Gaussian samples per layer at eps = {num(p['eps'])}, "
        f"seed {s['seed']}. Definitions: [docs/definitions.md](../definitions.md). 95% intervals over samples "
        "(rho) and bootstrap over layers (correlations).", "",
        "## Predicted vs measured drift", "",
        md_table(["prediction", "Spearman", "95% interval", "layers"], corr_rows), "",
        "## Per layer", "",
        f"Layers whose rho exceeds 1 with 95% confidence: aggregate {amp.get('aggregate', 'n/a')}, token-wise "
        f"{amp.get('tokenwise', 'n/a')}.", "",
        md_table(["layer", "rho aggregate", "95%", "rho token-wise", "95%", "rho at BOS", "rho max (Jacobian)"], rows),
        "", "## Absorption", "",
        md_table(["eps", "layers absorbing (r < 1)", "mean r (aggregate)", "mean r (token-wise)"], absorb_rows), "",
        source_note(r, name), "",
    ]
    return "\n".join(lines)


@analysis_page("Per-matrix sensitivity")
def sensitivity(name: str, r: dict) -> str:
    sens, model, s = r["sensitivity"], r["model"]["model"], r["settings"]["sensitivity"]
    lines = ["# Per-matrix sensitivity", "", HEADER, "",
             f"Model `{model}`, budget `{r['budget']}`: one matrix compressed at a time, everything else dense; "
             f"perplexity ratio on {num(sens['scored_tokens'])} evaluation tokens (dense perplexity "
             f"{num(sens['dense_ppl'])}), calibration statistics from {num(s['calib_tokens'])} calibration tokens. "
             "95% intervals: paired bootstrap over evaluation windows.", ""]
    for label, m in sens["maps"].items():
        lines += [f"## {label}", "",
                  md_table(["kind", "median ratio over layers"],
                           [(h["kind"], num(h["median_ratio"])) for h in m["hierarchy"]]), "",
                  f"Spread (max / min ratio over sites): {num(m['spread'])} (most sensitive: layer "
                  f"{m['max_site'][0]} `{m['max_site'][1]}`, x{num(m['max_ratio'])}; least: layer "
                  f"{m['min_site'][0]} `{m['min_site'][1]}`, x{num(m['min_ratio'])}). "
                  f"CFI: {num(m['cfi'])}; every matrix compressed at once: "
                  f"x{num(m['uniform_ratio'])}.", ""]
    verdict = r["answer"].get("matrices")
    if verdict:
        a = r["answer"]["settings"]
        lines += ["## Safe and unsafe matrices", "",
                  f"At {verdict['map']}: {verdict['safe']} of {verdict['sites']} matrices are safe (95% upper bound "
                  f"of the ratio at most 1 + {a['safe_cost']}), {verdict['unsafe']} unsafe (95% lower bound above "
                  f"1 + {a['unsafe_cost']}), {verdict['inconclusive']} inconclusive at this budget.", "",
                  md_table(["kind", "safe", "unsafe", "inconclusive"],
                           [(k, v["safe"], v["unsafe"], v["inconclusive"]) for k, v in verdict["by_kind"].items()]),
                  ""]
    lines += [source_note(r, name), ""]
    return "\n".join(lines)


def _row(r: dict) -> list[str]:
    return [num(r["perplexity"]), interval(r["perplexity_ci"]), num(r.get("ratio")),
            interval(r["ratio_ci"]) if "ratio_ci" in r else "", num(r.get("mean_acc"), 3)]


@analysis_page("Depth pruning and sparsity allocation")
def depth_allocation(name: str, r: dict) -> str:
    d, al, s = r["depth"], r["allocation"], r["settings"]["depth"]
    answer = r["answer"]
    depth_rows = [["dense", "0", "", *_row(d["dense"])]]
    depth_rows += [[x["criterion"], str(x["k"]), str(x["removed_layers"]), *_row(x)] for x in d["rows"]]
    alloc_rows = [[x["method"], f"{x['sparsity']:.0%}", x["schedule"], num(x["realised_mean"], 3), *_row(x)[:4]]
                  for x in al["rows"]]
    best = answer["allocation"]["best"]
    note = comparison_note(d["scored_tokens"])
    vs = [f"- {b['method']} at {b['sparsity']:.0%}: best schedule `{b['schedule']}`{note}"
          + (f", x{num(b['vs_uniform']['ratio'])} of uniform (95% {interval(b['vs_uniform']['ci'])}): "
             + ("better than uniform beyond the noise." if b["vs_uniform"]["beyond_noise"] else
                "**within the noise** of uniform.") if "vs_uniform" in b else ".")
          for b in best]
    rec = answer["removal"]["recommended"]
    lines = [
        "# Depth pruning and sparsity allocation", "", HEADER, "",
        f"Model `{r['model']['model']}`, budget `{r['budget']}`: scores and calibration statistics from "
        f"{num(s['calib_tokens'])} calibration tokens, perplexity on {num(d['scored_tokens'])} evaluation tokens "
        f"(windows of {s['seq_len']}), seed {s['seed']}. 95% intervals by bootstrap over evaluation windows; ratios "
        "are paired with the dense model on the same windows. Definitions: "
        "[docs/definitions.md](../definitions.md).", "",
        "## Layer removal (physical deletion)", "",
        md_table(["criterion", "k", "removed layers", "perplexity", "95%", "ratio to dense", "95%", "mean accuracy"],
                 depth_rows), "",
        "Recommended removal at this budget" + comparison_note(d["scored_tokens"]) + ": "
        + (f"layers {rec['removed_layers']} (k = {rec['k']}, {rec['criterion']}), x{num(rec['ratio'])} "
           f"{interval(rec['ratio_ci'])}." if rec else "none within the report's threshold."), "",
        "## Layer-wise sparsity allocation", "",
        md_table(["method", "target", "schedule", "realised", "perplexity", "95%", "ratio to dense", "95%"],
                 alloc_rows), "", *vs, "",
        source_note(r, name), "",
    ]
    return "\n".join(lines)


@analysis_page("Structure")
def structure(name: str, r: dict) -> str:
    st, s = r["structure"], r["settings"]["structure"]
    h = st["headline"]
    rows = [[x["method"], str(x["start"]), str(x["length"]), num(x.get("r2"), 3), num(x["perplexity"])]
            for x in st["replacement"]]
    lines = [
        "# Structure: variance vs importance, linear replacement, early exit", "", HEADER, "",
        f"Model `{r['model']['model']}`, budget `{r['budget']}`: {st['calibration_windows']} calibration and "
        f"{st['evaluation_windows']} evaluation windows of {s['seq_len']} tokens; subspace dimension k = {s['k']}.", "",
        f"- Overlap of the top-variance and top-importance subspaces, mean over layers: {num(h['mean_overlap'], 3)} "
        f"(chance: {num(h['chance_overlap'], 3)}).",
        f"- Tokens whose intermediate prediction already equals the final one at half depth: "
        f"{num(100 * h['agreement_at_half_depth'], 3)}%; settled for good: "
        f"{num(100 * h['settled_at_half_depth'], 3)}%.",
        f"- Dense perplexity {num(st['dense_perplexity'])}; block linear replacement:", "",
        md_table(["fit", "first block", "blocks", "R^2", "perplexity"], rows), "",
        source_note(r, name), "",
    ]
    return "\n".join(lines)


@analysis_page("Zero-shot accuracy")
def zero_shot(name: str, r: dict) -> str:
    tasks, s = r["eval"]["tasks"], r["settings"]["eval"]
    rows = [[t, num(x["items"]), num(x["acc"], 3), num(x["acc_stderr"], 2), num(x.get("acc_norm"), 3)]
            for t, x in tasks.items()]
    lines = ["# Zero-shot multiple-choice accuracy", "", HEADER, "",
             f"Model `{r['model']['model']}`, budget `{r['budget']}`: lm-evaluation-harness prompts and metrics, "
             f"first {s['limit'] or 'all'} items of each task, BOS {'prepended' if s['prepend_bos'] else 'not added'}. "
             "stderr: standard error of the mean over items.", "",
             md_table(["task", "items", "accuracy", "stderr", "accuracy (length-normalised)"], rows), "",
             source_note(r, name), ""]
    return "\n".join(lines)
