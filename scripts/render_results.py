"""Render the results pages (docs/results.md and docs/results/*.md) from the data in docs/results/data/.

Every number on those pages comes from a committed data file that records its command, commit,
package versions, settings, seed, machine and wall time; nothing is typed by hand. Run

    .venv/bin/python scripts/render_results.py          # rewrite the pages
    .venv/bin/python scripts/render_results.py --check  # exit 1 if a committed page differs

``tests/test_results_render.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "results" / "data"


def load_data(folder: Path = DATA) -> dict[str, dict]:
    """Every data file, by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def num(value, digits: int = 4) -> str:
    """A number as the pages print it (``n/a`` for missing or non-finite)."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def pct(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:+.{digits}f}%"


def interval(pair: Sequence, digits: int = 4) -> str:
    return f"[{num(pair[0], digits)}, {num(pair[1], digits)}]"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def source_note(data: dict, name: str) -> str:
    """Where a data file's numbers come from, for the foot of a page."""
    p = data["provenance"]
    m = p["machine"]
    wall = data.get("wall_seconds", data.get("timings", {}).get("total_seconds"))
    return (f"Data: `docs/results/data/{name}.json`, from `{p['command']}` at commit `{p['commit'][:12]}` "
            f"(rhojax {p['rhojax']}, jax {p['packages'].get('jax')}, transformers {p['packages'].get('transformers')}, "
            f"torch {p['packages'].get('torch')}), on {m['cores']} cores of {m['cpu']} ({m['backend']}), "
            f"{duration(wall)} wall.")


def duration(seconds: float) -> str:
    return f"{num(seconds, 3)} s" if seconds < 120 else f"{num(seconds / 60, 3)} min"


#: What the parity tests assert: thresholds of the tests, not measurements (the tests are the evidence).
PARITY = (Path(__file__).parent / "results_text" / "parity_checks.md").read_text().rstrip("\n")


def foundation(data: dict[str, dict]) -> str:
    ref = data.get("reference_perplexity")
    lines = ["# Foundation: perplexity against transformers, and the join rule", "",
             HEADER, ""]
    if ref is None:
        return "\n".join(lines + ["No data yet: run `.venv/bin/python scripts/measure_reference.py`.", ""])
    s, cases = ref["settings"], ref["cases"]
    labels = {
        "blank_line": "documents joined as text with a blank line, tokenized whole (rhojax's rule)",
        "eos": "each document tokenized alone, EOS id between documents",
        "spliced_before_the_fix": "each document tokenized alone, a separately tokenized blank line spliced "
                                  "between them (rhojax before the fix)",
        "user_file": "a user's multi-paragraph text file, read whole",
    }
    rows = [(labels[k], num(c["scored_tokens"]), f"{num(c['rhojax'])} {interval(c['rhojax_ci'])}",
             f"{num(c['transformers'])} {interval(c['transformers_ci'])}", pct(c["relative_difference"], 3),
             "yes" if c["windows_identical"] else "no") for k, c in cases.items()]
    blank, eos, spliced = cases["blank_line"], cases["eos"], cases["spliced_before_the_fix"]
    lines += [
        f"Model `{s['model']}`, {s['corpus']}, windows of {s['seq_len']} tokens (`[BOS] + {s['seq_len'] - 1}`), "
        f"95% intervals by {s['bootstrap']}. In every row transformers tokenizes the text with its own "
        "tokenizer, cuts its own windows and runs its own PyTorch forward; rhojax does the same with its own code. "
        "\"Same windows\" says whether the two token arrays are identical.", "",
        md_table(["token stream", "scored tokens", "rhojax ppl [95%]", "transformers ppl [95%]", "difference",
                  "same windows"], rows), "",
        "## What the parity tests assert", "", PARITY, "",
        "## Reading", "",
        f"- rhojax and transformers agree within {pct(max(abs(c['relative_difference']) for c in cases.values()), 3)} "
        "in every row, and build identical windows from the same text.",
        f"- The splice used before the fix raised perplexity to {num(spliced['rhojax'])} against "
        f"{num(blank['rhojax'])} for the same articles tokenized as text "
        f"({pct(spliced['rhojax'] / blank['rhojax'] - 1, 1)}): the separately tokenized blank line is a token "
        "the model rarely sees between paragraphs of running text. The two intervals overlap because they "
        "describe the spread over windows; the shift itself is systematic, since it comes from every article "
        "boundary of the same text.",
        f"- Joining with EOS gives {num(eos['rhojax'])} against {num(blank['rhojax'])} for the blank-line text join "
        f"({pct(eos['rhojax'] / blank['rhojax'] - 1, 1)}). rhojax joins documents as text with a blank line: it is "
        "what a user's file looks like, it needs no assumption about which special token a chat-tuned model's "
        f"pre-training used between documents (this tokenizer's EOS is id {s['eos_id']}), and it is the rule "
        "used for every perplexity in these pages.", "",
        source_note(ref, "reference_perplexity"), "",
    ]
    return "\n".join(lines)


HEADER = "<!-- Generated by scripts/render_results.py from docs/results/data/; do not edit. -->"
#: Perplexity comparisons on fewer evaluation tokens are shown as indicative, not as findings.
MIN_COMPARISON_TOKENS = 16384


def comparison_note(tokens: int) -> str:
    return ("" if tokens >= MIN_COMPARISON_TOKENS else
            f" (indicative only: {num(tokens)} evaluation tokens, fewer than the {num(MIN_COMPARISON_TOKENS)} "
            "a comparison needs in these pages)")


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


def index(data: dict[str, dict]) -> str:
    """docs/results.md: the headlines, each with its interval and a link to its page."""
    lines = ["# Results", "", HEADER, "",
             "Measured results of rhojax. Every number on these pages is rendered from a committed data file in "
             "[`docs/results/data/`](results/data/) that records its command, commit, package versions, settings, "
             "seed, machine and wall time (`scripts/render_results.py`; a test fails when a page and its data "
             "disagree). Definitions: [docs/definitions.md](definitions.md).", "",
             "- [Foundation: perplexity against transformers, and the join rule](results/foundation.md)",
             "- [Contraction profile](results/propagation.md)",
             "- [Per-matrix sensitivity](results/sensitivity.md)",
             "- [Zero-shot accuracy](results/eval.md)",
             "- [Formal bounds: Coq proofs, site bounds, checker](results/bounds.md)",
             "- [Depth pruning and sparsity allocation](results/depth_allocation.md)",
             "- [Structure](results/structure.md)",
             "- [Recovery after compression (`rhojax heal`)](results/heal.md)", "",
             "## Headlines", ""]
    ref = data.get("reference_perplexity")
    if ref is not None:
        c = ref["cases"]
        bias = c["spliced_before_the_fix"]["rhojax"] / c["blank_line"]["rhojax"] - 1
        lines.append(f"- **Perplexity matches transformers.** On {num(c['blank_line']['scored_tokens'])} evaluation "
                     f"tokens, rhojax {num(c['blank_line']['rhojax'])} "
                     f"{interval(c['blank_line']['rhojax_ci'])} vs transformers {num(c['blank_line']['transformers'])}"
                     f" ({pct(c['blank_line']['relative_difference'], 3)}; each tokenizes the text itself). The "
                     f"protocol used before the tokenization fix read {num(c['spliced_before_the_fix']['rhojax'])} "
                     f"on the same articles ({pct(bias, 1)}"
                     "): every perplexity published before the fix was biased upwards and has been re-measured or "
                     "withdrawn. [details](results/foundation.md)")
    found = analysis(data)
    if found is not None:
        _, r = found
        p, a = r["profile"], r["answer"]
        d = p["drift"]
        lines.append(f"- **Predicted vs measured drift** (budget `{r['budget']}`): Spearman "
                     f"{num(d['aggregate']['spearman'], 3)} {interval(d['aggregate']['spearman_ci'], 3)} in the "
                     f"aggregate reading, {num(d['tokenwise']['spearman'], 3)} "
                     f"{interval(d['tokenwise']['spearman_ci'], 3)} token-wise; after 50% magnitude pruning, dense "
                     f"rho {num(d['after_compression_dense_rho']['spearman'], 3)} vs re-measured rho "
                     f"{num(d['after_compression_compressed_rho']['spearman'], 3)} (intervals overlap: "
                     + ("yes" if _overlap(d["after_compression_dense_rho"]["spearman_ci"],
                                          d["after_compression_compressed_rho"]["spearman_ci"]) else "no")
                     + "). [details](results/propagation.md)")
        m = a["matrices"]
        lines.append(f"- **Matrices** at {m['map']}: {m['safe']} of {m['sites']} safe, {m['unsafe']} unsafe, "
                     f"{m['inconclusive']} inconclusive at this budget; most sensitive: "
                     + ", ".join(f"layer {w['layer']} {w['kind']} x{num(w['ratio'], 3)} {interval(w['ci'], 3)}"
                                 for w in m["worst"][:3]) + ". [details](results/sensitivity.md)")
        rec = a["removal"]["recommended"]
        best = a["removal"]["best_per_k"]
        note = comparison_note(r["depth"]["scored_tokens"])
        lines.append(f"- **Layer removal**{note}: " + "; ".join(
            f"k = {b['k']}: best {b['criterion']} x{num(b['ratio'], 3)} {interval(b['ratio_ci'], 3)}" for b in best)
            + (f". Recommended at this budget: k = {rec['k']}." if rec else ". No tested removal is within the "
               "report's threshold.") + " [details](results/depth_allocation.md)")
        for b in a["allocation"]["best"]:
            vs = b.get("vs_uniform")
            lines.append(f"- **Allocation**{note}, {b['method']} at {b['sparsity']:.0%}: best schedule "
                         f"`{b['schedule']}` "
                         + (f"x{num(vs['ratio'], 3)} of uniform {interval(vs['ci'], 3)}: "
                            + ("better beyond the noise." if vs["beyond_noise"] else "**within the noise**.")
                            if vs else "(uniform itself).") + " [details](results/depth_allocation.md)")
        b = r.get("bounds", {})
        if "sites" in b:
            lines.append(f"- **Bounds**: site bounds {num(b['sites']['configurations'])} configurations, "
                         f"{b['sites']['violations']} violations; checker "
                         f"{num(b.get('checker', {}).get('configurations'))} configurations, "
                         f"{b.get('checker', {}).get('violations', 'n/a')} violations. [details](results/bounds.md)")
    lines += ["", "## Not re-measured since the tokenization fix", "",
              "Results on Qwen2.5-Coder-0.5B, the CFI validation across models and the speed ratios against "
              "PyTorch were measured with the old windows or on a loaded machine and are not shown until they are "
              "re-measured (`rhojax analyze qwen2.5-coder-0.5b --budget standard`, `benchmarks/`).", ""]
    return "\n".join(lines)


def _overlap(a: Sequence, b: Sequence) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


#: The time goal of the default budget, in minutes.
QUICK_GOAL_MINUTES = 15


def budgets(data: dict[str, dict]) -> str:
    """README's table of the main job's budgets: what each runs and its measured time on this machine."""
    import dataclasses

    from rhojax.analysis import BUDGETS
    from rhojax.runs import as_settings

    rows = []
    for name, b in BUDGETS.items():
        measured = data.get(f"analyze_smollm2-135m_{name}")
        if measured is not None and measured["settings"] != as_settings(dataclasses.asdict(b)):
            measured = None  # measured with other settings than the budget has now
        if measured is not None:
            m = measured["provenance"]["machine"]
            time = (f"{num(measured['timings']['total_seconds'] / 60, 3)} min on {m['cores']} cores "
                    f"(`docs/results/data/analyze_smollm2-135m_{name}.json`)")
        else:
            time = "not measured on this machine with these settings"
        what = (f"ppl {num(b.perplexity.tokens)} tokens; profile {num(b.profile.tokens)} tokens, K = "
                f"{b.profile.samples}; sweep {'+'.join(b.sensitivity.methods)} on "
                f"{'layers ' + ','.join(map(str, b.sensitivity.layers)) if b.sensitivity.layers else 'every matrix'}, "
                f"{num(b.sensitivity.tokens)} tokens; tasks {','.join(b.eval.tasks)} "
                f"({b.eval.limit or 'all'} items); bounds plan {b.bounds.plan or 'none'} + sites "
                f"{b.bounds.site_plan or 'none'}; depth k = {','.join(map(str, b.depth.ks))} x "
                f"{len(b.depth.criteria)} criteria, {len(b.depth.schedules)} schedules at "
                f"{','.join(f'{x:.0%}' for x in b.depth.sparsities)}, {num(b.depth.tokens)} tokens; structure "
                f"{num(b.structure.tokens)} tokens")
        rows.append([f"`{name}`", what, time])
        if name == "quick":
            goal = QUICK_GOAL_MINUTES
            if measured is None:
                verdict = "it has not been measured with the settings it has now"
            else:
                minutes = measured["timings"]["total_seconds"] / 60
                verdict = (f"the measured run took {num(minutes, 3)} min, "
                           + ("within the goal" if minutes <= goal else f"{num(minutes - goal, 2)} min over it"))
            note = (f"The goal for `quick` is at most {goal} minutes on a 2-core CPU, compile and load included: "
                    f"{verdict}.")
    untimed = [f"`{name}`" for name, row in zip(BUDGETS, rows, strict=True)
               if name != "quick" and row[2].startswith("not measured")]
    if untimed:
        note += f" Not timed on this machine: {', '.join(untimed)}."
    return md_table(["budget", "what it runs", "time (compile and load included)"], rows) + "\n\n" + note


def _performance_renderers() -> dict[str, Callable[[dict[str, dict]], str]]:
    """The benchmark sections of docs/performance.md (rendered by ``benchmarks.report``)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.report import benchmarks_section, profile_cost_section

    return {"benchmarks": benchmarks_section, "profile_cost": profile_cost_section}


#: Regions of hand-written files that are rendered from data: file -> {region name: renderer}.
REGIONS: dict[str, dict[str, Callable[[dict[str, dict]], str]]] = {
    "README.md": {"budgets": budgets},
    "docs/performance.md": _performance_renderers(),
}


def fill_regions(text: str, regions: dict[str, Callable[[dict[str, dict]], str]], data: dict[str, dict]) -> str:
    """``text`` with each ``<!-- NAME:start -->...<!-- NAME:end -->`` region replaced by its rendering."""
    for name, render in regions.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{render(data)}\n{end}{tail}"
    return text


PAGES: dict[str, Callable[[dict[str, dict]], str]] = {
    "docs/results.md": index,
    "docs/results/foundation.md": foundation,
    "docs/results/propagation.md": propagation,
    "docs/results/sensitivity.md": sensitivity,
    "docs/results/depth_allocation.md": depth_allocation,
    "docs/results/structure.md": structure,
    "docs/results/eval.md": zero_shot,
}


def render_all(data: dict[str, dict] | None = None) -> dict[str, str]:
    """Page path (relative to the repository) -> its text (whole pages, and files with rendered regions)."""
    data = load_data() if data is None else data
    pages = {path: page(data) for path, page in PAGES.items()}
    for path, regions in REGIONS.items():
        pages[path] = fill_regions((ROOT / path).read_text(), regions, data)
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if a committed page differs from its data.")
    args = parser.parse_args()
    stale = []
    for path, text in render_all().items():
        target = ROOT / path
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(path)
        else:
            target.write_text(text)
    if stale:
        print("pages out of date with their data (run scripts/render_results.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
