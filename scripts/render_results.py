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
import math
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
    return (f"Data: `docs/results/data/{name}.json`, from `{p['command']}` at commit {commit_text(p['commit'])} "
            f"(rhojax {p['rhojax']}, jax {p['packages'].get('jax')}, transformers {p['packages'].get('transformers')}, "
            f"torch {p['packages'].get('torch')}), on {m['cores']} cores of {m['cpu']} ({m['backend']}), "
            f"{duration(wall)} wall.")


def commit_text(commit: str) -> str:
    """A provenance commit as the pages print it: short, and flagged when the tree had uncommitted changes."""
    return f"`{commit[:12]}`" + (" with uncommitted changes" if commit.endswith("+dirty") else "")


def findings_note(data: dict, name: str) -> str:
    """:func:`source_note` for a findings file, whose studies may come from different commands, commits
    and machines: one line per study."""
    lines = [f"Data: `docs/results/data/{name}.json`, {duration(data['wall_seconds'])} wall in all; its studies "
             "come from:", ""]
    for study, d in data["studies"].items():
        p, m = d["provenance"], d["provenance"]["machine"]
        lines.append(f"- `{study}`: `{p['command']}` at commit {commit_text(p['commit'])} (rhojax {p['rhojax']}, jax "
                     f"{p['packages'].get('jax')}), on {m['cores']} cores of {m['cpu']} ({m['backend']}), "
                     f"{duration(d['wall_seconds'])} wall.")
    return "\n".join(lines)


def earlier_runs_note(data: dict) -> list[str]:
    """The runs of a plan data file whose results came from another command or commit than its provenance's
    (seeds added by later runs): one line per run, naming its seeds and targets."""
    top = data["provenance"]
    runs: dict[tuple[str, str], list[str]] = {}
    for t in data["targets"]:
        p = t.get("provenance", top)
        if (p["command"], p["commit"]) != (top["command"], top["commit"]):
            runs.setdefault((p["command"], p["commit"]), []).append(f"{t['target']} seed {t['calib_seed']}")
    if not runs:
        return []
    lines = [f"- {', '.join(which)}: `{command}` at commit {commit_text(commit)}."
             for (command, commit), which in runs.items()]
    return ["", "Results kept from earlier runs:", "", *lines]


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
        *_real_parity(data),
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


def _real_parity(data: dict[str, dict]) -> list[str]:
    """The measured real-model parity (``parity_<model>`` files of scripts/measure_parity.py), as a table."""
    found = {name: d for name, d in sorted(data.items()) if name.startswith("parity_")}
    if not found:
        return []
    rows = [[f"`{d['settings']['model']}`",
             f"{num(d['sentence_max_abs_logit_diff'], 2)} ({d['sentence_tokens']} tokens)",
             f"{num(d['windows_max_abs_logit_diff'], 2)} ({d['settings']['windows']} x {d['settings']['seq_len']})",
             f"{num(100 * d['same_argmax_fraction'], 4)}%", num(d["rhojax_perplexity"], 7),
             num(d["transformers_perplexity"], 7), pct(d["relative_perplexity_difference"], 5)]
            for d in found.values()]
    lines = ["## Real-model parity, measured", "",
             "rhojax against transformers' own GGUF loader and PyTorch forward (float32) on the packaged GGUF, "
             "each side loading the file itself (`scripts/measure_parity.py`; measured rather than tested where the "
             "model is too large for the test suite):", "",
             md_table(["model", "largest logit difference, sentence", "largest logit difference, evaluation windows",
                       "same argmax", "rhojax ppl", "transformers ppl", "difference"], rows), ""]
    return lines + [source_note(d, name) for name, d in found.items()] + [""]


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


#: The models of the cross-model page, in the order of their size.
MODELS = ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
MLP_KINDS = {"up", "gate", "down"}


def model_maps(data: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """``{model: {map label: {map, dense_ppl, scored_tokens, settings, source}}}`` from the findings files
    (``findings_<model>``, one sweep per method) and the main-job reports (``analyze_<model>_<budget>``);
    a findings map replaces a report's map of the same label."""
    found: dict[str, dict[str, dict]] = {}
    for name, d in sorted(data.items(), key=lambda kv: not kv[0].startswith("analyze_")):
        if name.startswith("analyze_"):
            sweeps = [(d["model"]["model"], d["sensitivity"], d["settings"]["sensitivity"])]
        elif name.startswith("findings_"):
            sweeps = [(d["model"], st, st["settings"]) for k, st in d["studies"].items() if k.startswith("sweep_")]
        else:
            continue
        for model, sweep, settings in sweeps:
            for label, m in sweep["maps"].items():
                found.setdefault(model, {})[label] = {"map": m, "dense_ppl": sweep["dense_ppl"], "source": name,
                                                      "scored_tokens": sweep["scored_tokens"], "settings": settings}
    return found


def model_studies(data: dict[str, dict], model: str) -> dict:
    """A model's contraction profile (with its settings) and depth rows, from its findings file or else its
    main-job report (same section format)."""
    out: dict = {}
    found = [(name, d) for name, d in sorted(data.items()) if name.startswith(f"analyze_{model}_")]
    if found:
        name, r = found[-1]
        out["profile"] = {**r["profile"], "settings": r["settings"]["profile"], "source": name}
        out["depth"] = {"rows": r["depth"]["rows"], "scored_tokens": r["depth"]["scored_tokens"], "source": name}
    findings = data.get(f"findings_{model}")
    if findings is not None and "profile" in findings["studies"]:
        out["profile"] = {**findings["studies"]["profile"], "source": f"findings_{model}"}
    if findings is not None and "depth" in findings["studies"] and "depth" not in out:
        d = findings["studies"]["depth"]
        out["depth"] = {"rows": d["rows"], "scored_tokens": d["scored_tokens"], "source": f"findings_{model}"}
    return out


def _tau_or_na(a: Sequence[float], b: Sequence[float]) -> str:
    from rhojax.sensitivity.summary import kendall_tau

    return num(kendall_tau(a, b), 3) if len(a) >= 2 else "n/a (fewer than two models)"


def interaction(m: dict) -> float:
    """``log10(all-at-once ratio) / (CFI * sites)`` of one map: the all-at-once log damage over the sum of
    the single-site log damages (1 = additive)."""
    return math.log10(m["uniform_ratio"]) / (m["cfi"] * m["sites"])


def cfi_agreement(maps: dict[str, dict[str, dict]]) -> list[dict]:
    """Per map label: the models with a complete map, Kendall's tau-b between their CFI and their
    all-at-once ratio, and the exact one-sided p-value of that tau (the chance that a random order of the
    models agrees at least as well), from :func:`model_maps`."""
    from scipy import stats

    rows = []
    for label in sorted({label for m in maps.values() for label in m}):
        have = [(model, maps[model][label]["map"]) for model in MODELS if label in maps.get(model, {})
                and maps[model][label]["map"]["cfi"] is not None and maps[model][label]["map"]["uniform_ratio"]]
        cfi, ratio = [m["cfi"] for _, m in have], [m["uniform_ratio"] for _, m in have]
        p = (float(stats.kendalltau(cfi, ratio, alternative="greater", method="exact").pvalue)
             if len(have) >= 3 else None)
        rows.append({"label": label, "models": have, "tau": _tau_or_na(cfi, ratio), "p": p})
    return rows


def _claims(model: str, maps: dict[str, dict], profile: dict | None, depth: dict | None) -> list[tuple[str, str, str]]:
    """The papers' claims, checked on one model's data: (claim, verdict, the line that says whether it holds
    here), the verdict one of holds, fails, not measured."""
    out = []
    for label, m in maps.items():
        top = [h["kind"] for h in m["map"]["hierarchy"][:3]]
        verdict = "holds" if set(top) == MLP_KINDS else "fails"
        out.append((f"MLP above attention ({label})", verdict,
                    f"- Hierarchy ({label}): the three most sensitive kinds are {', '.join(top)}; MLP matrices "
                    f"above attention: **{verdict}**."))
    if {"magnitude@0.5", "wanda@0.5"} <= set(maps):
        mag, wanda = maps["magnitude@0.5"]["map"]["spread"], maps["wanda@0.5"]["map"]["spread"]
        verdict = "holds" if wanda < mag else "fails"
        out.append(("Wanda spread below magnitude's", verdict,
                    f"- Spread: magnitude {num(mag, 3)}x, Wanda {num(wanda, 3)}x; activation-aware scores shrink "
                    f"the spread: **{verdict}**. The papers' ~600x magnitude spread is not approached by one "
                    "matrix at 50% here."))
    if profile is not None:
        sink = profile["sink_rho"]
        passing = sum(abs(r - 1) <= 0.01 for r in sink)
        gap = sum(abs(a - b) / a for a, b in zip(profile["rho"], profile["token_rho_mean"], strict=True)) / len(sink)
        out.append(("BOS sink: aggregate and token-wise rho differ", "holds" if gap > 0.05 else "fails",
                    f"- BOS sink: a perturbation of the BOS position passes a layer unchanged (rho at BOS within "
                    f"1% of 1) in {passing} of {len(sink)} layers; the aggregate and token-wise rho differ by "
                    f"{num(100 * gap, 3)}% of the aggregate rho on average per layer, so the two readings "
                    + ("**differ** here (over 5%), as the sink claim predicts." if gap > 0.05 else
                       "**agree** here (within 5%).")))
        d = profile["drift"]["aggregate"]
        verdict = "holds" if d["spearman_ci"][0] > 0 else "fails"
        out.append(("rho predicts drift", verdict,
                    f"- Drift prediction: the product of the layers' aggregate rho orders the measured drift of an "
                    f"injection by layer with Spearman {num(d['spearman'], 3)} {interval(d['spearman_ci'], 3)}: "
                    + ("**holds** (interval above 0)." if verdict == "holds" else
                       "**fails** here (interval includes 0).")))
    rows = {(r["criterion"], r["k"]): r for r in (depth or {}).get("rows", [])}
    ks = sorted(k for c, k in rows if c == "bi" and ("rho_ascending", k) in rows)
    if ks:
        better = [k for k in ks if rows[("rho_ascending", k)]["ratio"] < rows[("bi", k)]["ratio"]]
        out.append(("rho removes better than BI", "holds" if len(better) == len(ks) else "fails",
                    "- rho vs Block Influence for layer removal (perplexity ratio after physical removal, "
                    f"{num(depth['scored_tokens'])} tokens, `{depth['source']}`): "
                    + "; ".join(f"k = {k}: rho x{num(rows[('rho_ascending', k)]['ratio'], 3)}, BI "
                                f"x{num(rows[('bi', k)]['ratio'], 3)}" for k in ks)
                    + "; rho removes better than BI at " + (f"k = {better}" if better else "no k") + "."))
    else:
        out.append(("rho removes better than BI", "not measured",
                    "- rho vs Block Influence for layer removal: not measured on this model (no depth study here)."))
    return out


def claims_table(data: dict[str, dict], maps: dict[str, dict[str, dict]]) -> str:
    """Every paper claim (rows) on every model (columns): holds, fails or not measured."""
    verdicts = {}
    for model in MODELS:
        studies = model_studies(data, model)
        if model in maps or studies.get("profile") is not None:
            for claim, verdict, _ in _claims(model, maps.get(model, {}), studies.get("profile"),
                                             studies.get("depth")):
                verdicts.setdefault(claim, {})[model] = verdict
    rows = [[claim, *(by_model.get(model, "not measured") for model in MODELS)]
            for claim, by_model in sorted(verdicts.items())]
    return md_table(["claim", *(f"`{model}`" for model in MODELS)], rows)


def _order(maps: Sequence[tuple[str, dict]], key: str) -> str:
    return " < ".join(f"`{model}`" for model, _ in sorted(maps, key=lambda x: x[1][key]))


def models_page(data: dict[str, dict]) -> str:
    """docs/results/models.md: CFI and its yardstick over four models, per-model hierarchy, spread, profile."""
    maps = model_maps(data)
    labels = sorted({label for m in maps.values() for label in m})
    lines = ["# Four models: sensitivity maps, the CFI and contraction profiles", "", HEADER, "",
             "Each model's per-matrix map compresses one matrix at a time (everything else dense) at 50% sparsity "
             "with magnitude and with Wanda scores; the CFI is the mean log10 perplexity ratio over all its "
             "matrices, and its yardstick is the perplexity ratio with every matrix compressed at once. The CFI "
             "is validated by Kendall's tau between the two over models, per (method, level), never mixing "
             "methods. Definitions: [docs/definitions.md](../definitions.md). The sweeps use the `quick` budget's "
             "settings on every model (so they are alike), which makes every number below indicative: few "
             "evaluation windows, intervals in the data files.", "",
             "## CFI and the all-at-once yardstick", ""]
    rows = []
    for model in MODELS:
        for label in labels:
            cell = maps.get(model, {}).get(label)
            if cell is None:
                rows.append([f"`{model}`", label, "not measured", "", "", "", "", ""])
                continue
            m, st = cell["map"], cell["settings"]
            rows.append([f"`{model}`", label, num(m["cfi"]), f"x{num(m['uniform_ratio'])}",
                         num(interaction(m), 3), num(cell["dense_ppl"]),
                         f"{num(cell['scored_tokens'])} ({st['tokens'] // st['seq_len']} x {st['seq_len']}), "
                         f"calibration {num(st['calib_tokens'])}, seed {st['seed']}", f"`{cell['source']}`"])
    lines += [md_table(["model", "map", "CFI", "all matrices at once", "interaction", "dense ppl",
                        "evaluation tokens", "data"], rows), "",
              "The interaction is the log of the all-at-once ratio over the sum of the single-matrix log ratios "
              "(`log10(all at once) / (CFI x matrices)`): 1 when the matrices' damage adds up in log perplexity, "
              "above 1 when compressing them together costs more than the sum of compressing each alone. The CFI, "
              "a mean of single-matrix damage, cannot see it, so a CFI can order models as the yardstick does "
              "only where the interaction is alike across them.", "",
              "A row \"not measured\" has no complete map in the data yet: `.venv/bin/python scripts/model_findings.py "
              "MODEL` measures it with the same settings (resumable; `--studies sweep_wanda` for one map).", ""]
    tau_rows = [[r["label"], str(len(r["models"])), r["tau"], "n/a" if r["p"] is None else num(r["p"], 3),
                 _order(r["models"], "cfi"), _order(r["models"], "uniform_ratio")] for r in cfi_agreement(maps)]
    lines += ["Agreement of the CFI with its yardstick over models (Kendall tau-b; 1 = the CFI orders the models "
              "as compressing every matrix at once does). The p-value is exact and one-sided: the chance that "
              "the models in a random order agree at least as well. With four models the smallest possible "
              "p-value is 1/24 (0.042), reached only by a perfect order, so this table can refute a useful CFI "
              "more easily than confirm one:", "",
              md_table(["map", "models", "Kendall tau", "p (exact, one-sided)", "order by CFI",
                        "order by all-at-once ratio"], tau_rows), ""]
    lines += ["## The papers' claims on each model", "",
              "Each verdict is explained, with its numbers, under its model below; \"rho removes better than BI\" "
              "holds only where it does at every number of removed layers measured.", "",
              claims_table(data, maps), "", "## Per model", ""]
    for model in MODELS:
        findings = data.get(f"findings_{model}")
        studies = model_studies(data, model)
        profile = studies.get("profile")
        if model not in maps and profile is None:
            lines += [f"### `{model}`", "", "Not measured yet.", ""]
            continue
        lines += [f"### `{model}`", ""]
        own = maps.get(model, {})
        reference = maps.get(MODELS[0], {})
        for label, cell in own.items():
            m = cell["map"]
            medians = {h["kind"]: h["median_ratio"] for h in m["hierarchy"]}
            transfer = ""
            if model != MODELS[0] and label in reference:
                ref = {h["kind"]: h["median_ratio"] for h in reference[label]["map"]["hierarchy"]}
                kinds = sorted(set(ref) & set(medians))
                transfer = (f" Kind order vs `{MODELS[0]}`: Kendall tau "
                            f"{_tau_or_na([medians[k] for k in kinds], [ref[k] for k in kinds])}.")
            lines.append(f"- {label}: hierarchy {' > '.join(medians)} (median ratios "
                         f"{', '.join(num(v, 4) for v in medians.values())}); spread {num(m['spread'], 3)}x, most "
                         f"sensitive layer {m['max_site'][0]} `{m['max_site'][1]}` x{num(m['max_ratio'], 4)}."
                         + transfer)
        if profile is not None:
            amplifying = [t for t, ci in enumerate(profile["rho_ci"]) if ci[0] > 1]
            d = profile["drift"]
            lines.append(f"- Contraction profile ({profile['layers']} layers, {profile['windows']} window(s) of "
                         f"{profile['settings']['seq_len']} tokens, K = {profile['settings']['samples']}, eps = "
                         f"{num(profile['eps'])}): mean rho {num(sum(profile['rho']) / profile['layers'], 4)} "
                         f"aggregate, {num(sum(profile['token_rho_mean']) / profile['layers'], 4)} token-wise; "
                         f"layers amplifying with 95% confidence (aggregate): {amplifying or 'none'}; predicted vs "
                         f"measured drift Spearman {num(d['aggregate']['spearman'], 3)} "
                         f"{interval(d['aggregate']['spearman_ci'], 3)} aggregate, "
                         f"{num(d['tokenwise']['spearman'], 3)} {interval(d['tokenwise']['spearman_ci'], 3)} "
                         f"token-wise (`{profile['source']}`).")
        lines += ["", "Paper claims on this model:", "",
                  *(line for _, _, line in _claims(model, own, profile, studies.get("depth"))), ""]
        if findings is not None:
            lines += [findings_note(findings, f"findings_{model}"), ""]
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
             "- [Recovery after compression (`rhojax heal`)](results/heal.md)",
             "- [Budgeted compression plans (`rhojax plan`)](results/plan.md)",
             "- [Four models: sensitivity maps, the CFI and contraction profiles](results/models.md)", "",
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
    agreement = [r for r in cfi_agreement(model_maps(data)) if r["p"] is not None]
    if agreement:
        lines.append("- **The CFI across models** (does the mean single-matrix damage order models as compressing "
                     "every matrix at once does?): " + "; ".join(
                         f"{r['label']}: Kendall tau {r['tau']} over {len(r['models'])} models (exact one-sided p "
                         f"{num(r['p'], 3)})" for r in agreement)
                     + ". " + ("No map's agreement is beyond chance at this number of models."
                               if all(r["p"] >= 0.05 for r in agreement) else
                               "Beyond chance (p < 0.05) for: "
                               + ", ".join(r["label"] for r in agreement if r["p"] < 0.05) + ".")
                     + " [details](results/models.md)")
    lines.append("")
    return "\n".join(lines)


def _overlap(a: Sequence, b: Sequence) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


#: The time goal of the default budget, in minutes.
QUICK_GOAL_MINUTES = 15


def same_settings(recorded: dict, current: dict, defaults: dict) -> bool:
    """``recorded == current``, where a field the record lacks counts as equal when ``current`` has it at its
    default (a setting added since then, whose default keeps the behaviour the record measured)."""
    if recorded.keys() - current.keys():
        return False
    for key, value in current.items():
        if key not in recorded:
            if value != defaults.get(key):
                return False
        elif isinstance(value, dict) and isinstance(recorded[key], dict):
            if not same_settings(recorded[key], value, defaults.get(key) or {}):
                return False
        elif recorded[key] != value:
            return False
    return True


def budgets(data: dict[str, dict]) -> str:
    """README's table of the main job's budgets: what each runs and its measured time on this machine."""
    import dataclasses

    from rhojax.analysis import BUDGETS, AnalysisSettings
    from rhojax.runs import as_settings
    from rhojax.settings import without_execution

    rows, defaults = [], without_execution(as_settings(dataclasses.asdict(AnalysisSettings())))
    for name, b in BUDGETS.items():
        measured = previous = data.get(f"analyze_smollm2-135m_{name}")
        same = measured is not None and same_settings(without_execution(measured["settings"]),
                                                      without_execution(as_settings(dataclasses.asdict(b))), defaults)
        if not same:
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
                f"{num(b.structure.tokens)} tokens; plan {b.plan.target} ({'+'.join(b.plan.methods)}, "
                f"{len(b.plan.baselines)} baseline{'s' if len(b.plan.baselines) != 1 else ''}, "
                f"{num(b.plan.tokens)} tokens)")
        rows.append([f"`{name}`", what, time])
        if name == "quick":
            goal = QUICK_GOAL_MINUTES
            if measured is None:
                verdict = "it has not been measured with the settings it has now" + (
                    "" if previous is None else f" (the last measured run, with other settings, took "
                    f"{num(previous['timings']['total_seconds'] / 60, 3)} min)")
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
    note += " A budget is timed by `.venv/bin/python benchmarks/bench_analyze.py --budget NAME` on an idle machine."
    return md_table(["budget", "what it runs", "time (compile and load included)"], rows) + "\n\n" + note


def _performance_renderers() -> dict[str, Callable[[dict[str, dict]], str]]:
    """The benchmark sections of docs/performance.md (rendered by ``benchmarks.report``)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.report import benchmarks_section, profile_cost_section

    return {"benchmarks": benchmarks_section, "profile_cost": profile_cost_section}


def gib(n: float) -> str:
    """A byte count in GiB, or MiB below 1 GiB."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def layer_streaming(data: dict[str, dict]) -> str:
    """docs/performance.md's streaming section: peak resident memory streamed vs whole, and the expected size."""
    d = data.get("streaming_memory")
    if d is None:
        return "Not measured yet (`python scripts/measure_streaming.py`)."
    s, z, runs = d["settings"], d["sizes"], d["runs"]
    names = {"ppl": "perplexity", "profile": f"rho profile (one eps, K = {s['samples']})"}
    rows = []
    for analysis, c in d["comparisons"].items():
        whole, streamed = runs[f"{analysis}_whole"], runs[f"{analysis}_streamed"]
        rows.append([names.get(analysis, analysis), gib(whole["peak_bytes"]), gib(streamed["peak_bytes"]),
                     f"{c['streamed_over_whole']:.2f}x", gib(c["expected_streamed_bytes"]),
                     f"{c['streamed_over_expected']:.2f}x", f"{c['streamed_above_runtime_over_resident']:.2f}x",
                     num(c["max_relative_difference"], 2),
                     f"{num(streamed['seconds'], 3)} s / {num(whole['seconds'], 3)} s"])
    table = md_table(["analysis", "peak, whole model", "peak, streamed", "streamed / whole",
                      "expected streamed (runtime + resident)", "streamed / expected",
                      "(streamed - runtime) / resident", "max relative difference of results",
                      "time streamed / whole"], rows)
    windows = s["tokens"] // s["seq_len"]
    return "\n".join([
        f"`{s['model']}` in float32, {windows} window(s) of {s['seq_len']} tokens: the whole model is "
        f"{gib(z['model_bytes'])}; resident while streaming are the embeddings, final norm and head "
        f"({gib(z['top_bytes'])}), one block of {z['layers']} ({gib(z['block_bytes'])}) and the activations "
        f"(states {gib(z['states_bytes'])}, one window's logits {gib(z['logits_bytes'])}). The runtime alone "
        f"(Python, JAX, the tokenizer, no model) peaks at {gib(runs['runtime']['peak_bytes'])}. The whole model "
        "is restored by `load_model` from the converted-params cache; the streamed one is opened by `open_blocks`, "
        "each block read from the GGUF file and dequantised when needed. Peaks are each process's `ru_maxrss`; the "
        "runs were made one after the other, on a shared machine (the times are not a speed comparison).", "",
        table, "",
        source_note(d, "streaming_memory"),
    ])


def _plan_row(name: str, r: dict, unit: str) -> list[str]:
    if "skipped" in r:
        return [name, "n/a", "not run: " + r["skipped"], "", "", ""]
    return [name, num(r["budget_used"][unit], 3), f"{num(r['perplexity'])} {interval(r['perplexity_ci'])}",
            f"{num(r['ratio'])} {interval(r['ratio_ci'])}", num(r.get("predicted_delta_loss")),
            num(r["measured_delta_loss"])]


def _closed_loop(loop: dict) -> str:
    corrected = ", ".join(f"{k} (x{num(v, 2)})" for k, v in loop["corrected_layers"].items()) or "none"
    if not loop["changed"]:
        return f"- Closed loop: corrected layers {corrected}; {loop['note']}."
    verdict = ("helped" if loop["helped"] else "did not help") + (
        "" if loop["significant"] else " (the paired interval contains 1: noise at this evaluation size)")
    return (f"- Closed loop: corrected layers {corrected} (measured / predicted contribution on the planned model); "
            f"the re-plan's perplexity is {num(loop['replan']['perplexity'])}, x{num(loop['replan_vs_plan'])} of the "
            f"plan's {interval(loop['replan_vs_plan_ci'])}: it {verdict}.")


def plan_anchors(t: dict) -> list[str]:
    """The anchors of one run (measured against single-site predicted loss, the factor applied) and the plan
    chosen without them."""
    if not t.get("anchors"):
        return []
    each = "; ".join(f"`{a['action']}` {num(a['measured_delta_loss'])} measured, {num(a['predicted_delta_loss'])} "
                     f"predicted from single sites (factor {num(a['factor'], 3)})" for a in t["anchors"])
    lines = [f"- Anchors (uniform plans built with sequential calibration; loss increase on the calibration "
             f"windows, nats/token): {each}."]
    u = t.get("unanchored_plan")
    if u is not None and u["same_plan"]:
        lines.append("- Without the anchors the cost model chooses the same plan.")
    elif u is not None:
        ci = u["anchored_vs_unanchored_ci"]
        lines.append(f"- Without the anchors the cost model chooses a plan of perplexity {num(u['perplexity'])}; the "
                     f"anchored plan is x{num(u['anchored_vs_unanchored'])} of it {interval(ci)}"
                     + (", within the noise." if ci[0] <= 1 <= ci[1] else "."))
    return lines


def lower_or_higher(gain: float) -> str:
    """``1 - plan / best`` as words: "12.0% lower" or "33.4% higher"."""
    return f"{100 * abs(gain):.1f}% " + ("lower" if gain >= 0 else "higher")


def plan_target(t: dict) -> list[str]:
    """One target of one seed: the plan and every baseline at the same budget."""
    unit, p = t["unit"], t["plan"]
    rows = [_plan_row("**plan**", p, unit), _plan_row("dense", {**t["dense"], "budget_used": {unit: 1.0}}, unit)]
    rows += [_plan_row(r["name"], r, unit) for r in t.get("baselines", [])]
    lines = [f"#### `{t['target']}`, calibration seed {t.get('calib_seed', 0)}", "",
             md_table(["model", f"{unit} used", "perplexity (95%)", "ratio to dense (95%)",
                       "predicted dL (nats/token)", "measured dL"], rows), ""]
    if "best_baseline" in t:
        gain = 1.0 - t["plan_vs_best_baseline"]
        ci = f" {interval(t['plan_vs_best_baseline_ci'])}" if "plan_vs_best_baseline_ci" in t else ""
        lines.append(f"- Plan vs the best baseline (`{t['best_baseline']}`): perplexity "
                     f"x{num(t['plan_vs_best_baseline'])}{ci} ({lower_or_higher(gain)}).")
    counts = ", ".join(f"{k} x{v}" for k, v in p["action_counts"].items())
    lines += [f"- The plan removes blocks {p['removed_layers'] or 'none'}; matrix actions: {counts}.",
              f"- Predicted loss increase {num(p['predicted_delta_loss'])} nats/token against "
              f"{num(p.get('measured_delta_loss_calibration'))} measured on the calibration windows and "
              f"{num(p.get('measured_delta_loss'))} on the evaluation split; loss curve kappa "
              f"{num(t['loss_curve']['kappa'])}, p {num(t['loss_curve']['p'], 3)}, depth exponent gamma "
              f"{num(t['loss_curve'].get('gamma', 1.0), 3)}"
              f"{' (the profile as is)' if t['loss_curve'].get('gamma', 1.0) == 1.0 else ' (fitted)'} on "
              f"{t.get('fit_sites', t['end_to_end'])} of {t['candidates']} candidates measured end to end"
              + (f" ({t['end_to_end']} measured end to end with every block removal)."
                 if t["end_to_end"] != t.get("fit_sites", t["end_to_end"]) else ".")]
    lines += plan_anchors(t)
    if "closed_loop" in t:
        lines.append(_closed_loop(t["closed_loop"]))
    return [*lines, ""]


def mean_interval(values: Sequence[float]) -> str:
    """Mean with a 95% t-interval over seeds (the range alone when there is one value)."""
    import numpy as np
    from scipy import stats

    v = np.asarray(values, np.float64)
    if v.size < 2:
        return f"{num(float(v[0]))} (one seed)"
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return f"{num(float(v.mean()))} [{num(float(v.mean() - half))}, {num(float(v.mean() + half))}]"


def over_seeds(values: Sequence[float], seeds: int) -> str:
    """:func:`mean_interval` of ``values``, saying "(k of n seeds)" when some of the ``seeds`` did not run."""
    if len(values) == seeds:
        return mean_interval(values)
    shown = num(values[0]) if len(values) == 1 else mean_interval(values)
    return f"{shown} ({len(values)} of {seeds} seeds)"


def plan_seed_summary(targets: list[dict]) -> list[str]:
    """Per target: the plan and each baseline over calibration seeds, and plan vs best baseline per seed."""
    lines = []
    for target in dict.fromkeys(t["target"] for t in targets):
        runs = [t for t in targets if t["target"] == target]
        seeds = [t.get("calib_seed", 0) for t in runs]
        names = ["plan"] + [r["name"] for r in runs[0]["baselines"]]
        rows = []
        for name in names:
            rs = [t["plan"] if name == "plan" else next((r for r in t["baselines"] if r["name"] == name), None)
                  for t in runs]
            ran = [r for r in rs if r is not None]
            if any("skipped" in r for r in ran):
                rows.append([f"`{name}`", "not run: " + ran[0].get("skipped", "in some seeds"), "", ""])
                continue
            rows.append([("**plan**" if name == "plan" else f"`{name}`"),
                         over_seeds([r["perplexity"] for r in ran], len(rs)),
                         over_seeds([r["ratio"] for r in ran], len(rs)),
                         ", ".join("not run" if r is None else num(r["perplexity"]) for r in rs)])
        gains = [1.0 - t["plan_vs_best_baseline"] for t in runs if "plan_vs_best_baseline" in t]
        best = ", ".join(f"`{t['best_baseline']}`" for t in runs if "best_baseline" in t)
        verdict = ("meets" if gains and min(gains) >= 0.10 else "does not meet")
        per_seed = ", ".join(lower_or_higher(1.0 - t["plan_vs_best_baseline"])
                             + (f" (paired 95% {interval(t['plan_vs_best_baseline_ci'])}"
                                f"{', within the noise' if _overlap(t['plan_vs_best_baseline_ci'], (1, 1)) else ''})"
                                if "plan_vs_best_baseline_ci" in t else "")
                             for t in runs if "plan_vs_best_baseline" in t)
        replans = [(t.get("calib_seed", 0), t["closed_loop"]["replan"]["perplexity"] / next(
            r["perplexity"] for r in t["baselines"] if r["name"] == t["best_baseline"]))
            for t in runs if t.get("closed_loop", {}).get("changed") and "best_baseline" in t]
        plural = "s" if len(runs) > 1 else ""
        lines += [f"### `{target}` over {len(runs)} calibration seed{plural} ({', '.join(map(str, seeds))})",
                  "", md_table(["model", "perplexity, mean [95% t-interval over seeds]", "ratio to dense",
                                "per seed"], rows), "",
                  f"- Plan vs the best baseline of each seed ({best}): "
                  f"{per_seed}; this {verdict} the goal of at least 10% lower perplexity in every seed.",
                  *(f"- The closed loop's re-plan (seed {seed}) against the same baseline: x{num(ratio)} "
                    f"({lower_or_higher(1.0 - ratio)})." for seed, ratio in replans),
                  ""]
    return lines


def plan_prediction(applied: list[dict]) -> list[str]:
    """Predicted vs measured loss increase (calibration windows) over every verified plan, and the baselines the
    cost model can price (those on its grid)."""
    from rhojax.bounds.site_study import spearman

    pairs = [(t["target"], t.get("calib_seed", 0), "plan", t["plan"]) for t in applied]
    pairs += [(t["target"], t.get("calib_seed", 0), "re-plan (closed loop)", t["closed_loop"]["replan"])
              for t in applied if t.get("closed_loop", {}).get("changed")]
    pairs += [(t["target"], t.get("calib_seed", 0), f"`{r['name']}`", r) for t in applied
              for r in t.get("baselines", []) if r.get("predicted_delta_loss") is not None]

    def stats(rows):
        a = [r["predicted_delta_loss"] for *_, r in rows]
        b = [r["measured_delta_loss_calibration"] for *_, r in rows]
        worst = max((max(x / y, y / x) for x, y in zip(a, b, strict=True) if x > 0 and y > 0), default=None)
        low = sum(x < y for x, y in zip(a, b, strict=True))
        return (f"Spearman {num(spearman(a, b) if len(a) >= 3 else None, 3)}, worst ratio (larger over smaller) "
                f"{num(worst, 3)}, predicted below measured in {low} of {len(a)}")

    planner = [row for row in pairs if row[2] == "plan"]
    enough = "" if len(planner) >= 10 else f" The check wants at least 10 plans; this data has {len(planner)}."
    rows = [[f"`{target}`", str(seed), who, num(r["predicted_delta_loss"]), num(r["measured_delta_loss_calibration"]),
             num(r["predicted_delta_loss"] / r["measured_delta_loss_calibration"], 3)
             if r["measured_delta_loss_calibration"] > 0 else "n/a"] for target, seed, who, r in pairs]
    return ["### Predicted vs measured", "",
            f"- The planner's {len(planner)} verified plans (every target and seed, and targets planned without "
            f"baselines): {stats(planner)}.{enough}",
            f"- Every plan the cost model can price (its plans, re-plans, and the baselines on its grid): "
            f"{stats(pairs)}.", "",
            md_table(["target", "seed", "plan", "predicted dL (nats/token)", "measured dL (calibration)",
                      "predicted / measured"], rows), ""]


def proxy_by_depth(t: dict) -> list[str]:
    """How the propagated proxy errs by depth: median measured / predicted loss increase of the fit sites of one
    run, per third of the layers (a ratio that drifts with depth means the profile's amplification is off)."""
    import numpy as np

    from rhojax.plan.cost_model import LossCurve

    fit, layers = t["loss_curve_fit"], t["layers"]
    layer = np.asarray(fit["layer"])
    measured = np.asarray(fit["delta_loss"], np.float64)
    predicted = LossCurve(**t["loss_curve"]).loss(fit["propagated_drift"])
    rows = []
    for lo, hi in ((0, layers // 3), (layers // 3, 2 * layers // 3), (2 * layers // 3, layers)):
        keep = (layer >= lo) & (layer < hi) & (measured > 0) & (predicted > 0)
        rows.append([f"{lo}-{hi - 1}", str(int(keep.sum())),
                     num(float(np.median(measured[keep] / predicted[keep]))) if keep.any() else "n/a"])
    return ["### The proxy by depth", "",
            f"Fit sites of `{t['target']}`, calibration seed {t.get('calib_seed', 0)} (single matrices measured end "
            "to end against the fitted curve applied to their propagated drift `eps * A^gamma`). A median near 1 in "
            "every third means the amplification carries errors to the output at the right rate; a ratio that "
            "falls with depth means it shrinks early errors too much, and the optimizer then spends the budget on "
            "early layers.", "",
            md_table(["layers", "fit sites", "median measured / predicted"], rows), ""]


def depth_exponent_of(t: dict) -> dict:
    """The F-test of ``gamma = 1`` restated from a run's stored fit sites (runs that did not record it)."""
    import numpy as np

    from rhojax.plan.study import depth_fit

    fit = t.get("loss_curve_fit", {})
    if "local_error" not in fit:
        return {}
    sites = [{"layer": layer, "local_error": e, "delta_loss": d}
             for layer, e, d in zip(fit["layer"], fit["local_error"], fit["delta_loss"], strict=True)]
    return depth_fit(sites, np.asarray(t["rho"], np.float64)).to_dict()


def plan_depth_exponent(targets: list[dict]) -> list[str]:
    """Per run: the fitted depth exponent gamma and the fitted plan against the plan chosen with gamma = 1."""
    rows = []
    for t in targets:
        c = t.get("profile_plan")
        if c is None:
            continue
        if c["same_plan"]:
            versus = "the same plan"
        else:
            ci = c["fitted_vs_profile_ci"]
            versus = (f"{num(c['perplexity'])}: x{num(c['fitted_vs_profile'])} {interval(ci)}"
                      + (", within the noise" if ci[0] <= 1 <= ci[1] else ""))
        test = t.get("depth_exponent") or depth_exponent_of(t)
        rows.append([f"`{t['target']}`", str(t.get("calib_seed", 0)), f"`{t['settings'].get('amplification')}`",
                     num(test["best_gamma"], 3) if test else "", num(test["p_value"], 2) if test else "",
                     num(t["loss_curve"]["gamma"], 3), num(t["plan"]["perplexity"]), versus])
    if not rows:
        return []
    return ["### The depth exponent", "",
            "The fitted `gamma` with the F-test's p-value against `gamma = 1`, the `gamma` the plan used (the "
            "setting `amplification`: `tested` uses the fitted value where p < 0.05), and the plan against the "
            "plan the same measurements give with `gamma = 1` (the profile's amplification as is), both "
            "evaluated in the run; the ratio is plan / profile plan perplexity with its paired 95% interval.", "",
            md_table(["target", "seed", "amplification", "fitted gamma", "p (gamma = 1)", "gamma used",
                      "plan perplexity", "plan with gamma = 1: perplexity, plan / it (paired 95%)"], rows), ""]


def ablation_summary(targets: list[dict]) -> str:
    """How the plans with the fitted ``gamma`` compare with the plans with ``gamma = 1``: geometric mean ratio and
    how many are better, worse or within the noise by their paired intervals."""
    import numpy as np

    runs = [t["profile_plan"] for t in targets if not t.get("profile_plan", {"same_plan": True})["same_plan"]]
    if not runs:
        return "Every plan equals the plan with `gamma = 1`."
    ratios = np.array([r["fitted_vs_profile"] for r in runs])
    better = sum(r["fitted_vs_profile_ci"][1] < 1 for r in runs)
    worse = sum(r["fitted_vs_profile_ci"][0] > 1 for r in runs)
    return (f"Over {len(runs)} plans that differ from the `gamma = 1` plan, perplexity ratio fitted / profile from "
            f"x{num(float(ratios.min()))} to x{num(float(ratios.max()))}, geometric mean "
            f"x{num(float(np.exp(np.log(ratios).mean())))}: {worse} worse, {better} better, "
            f"{len(runs) - worse - better} within the noise (paired 95% intervals).")


def paired_accuracy_difference(a: Sequence[int], b: Sequence[int]) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same items (0/1 correctness) with a normal 95% interval."""
    import numpy as np

    from rhojax.eval.tasks import mean_stderr

    mean, stderr = mean_stderr(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return mean, mean - 1.96 * stderr, mean + 1.96 * stderr


def plan_zero_shot(runs: list[dict]) -> list[str]:
    """Zero-shot accuracy of the dense model, the plan and the best baseline per target, with the plan's
    paired accuracy difference to the baseline on the same items."""
    tasks = runs[0]["tasks"]
    rows, notes = [], []
    for z in runs:
        named = {r["name"]: r for r in z["rows"]}
        for r in z["rows"]:
            who = "**plan**" if r["name"] == "plan" else r["name"] if r["name"] == "dense" else f"`{r['name']}`"
            rows.append([f"`{z['target']}`", who, num(r["perplexity"]),
                         *(f"{100 * r['tasks'][k]['acc']:.1f} +- {100 * r['tasks'][k]['acc_stderr']:.1f}"
                           for k in tasks), f"{100 * r['mean_acc']:.1f}"])
        base = next(r for r in z["rows"] if r["name"] not in ("dense", "plan"))
        parts = []
        for k in tasks:
            mean, lo, hi = paired_accuracy_difference(named["plan"]["tasks"][k]["correct"], base["tasks"][k]["correct"])
            noise = ", within the noise" if lo <= 0 <= hi else ""
            parts.append(f"{k} {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]{noise}")
        notes.append(f"- `{z['target']}`: plan minus `{base['name']}` on the same items: {'; '.join(parts)}.")
    items = ", ".join(f"{k} {runs[0]['rows'][0]['tasks'][k]['items']}" for k in tasks)
    return ["### Zero-shot accuracy", "",
            f"Calibration seed {runs[0]['calib_seed']}; the dense model, the plan and each target's best baseline "
            f"(by perplexity); accuracy in percent +- its standard error, on the first items of each task ({items}).",
            "", md_table(["target", "model", "perplexity", *(f"{k} acc" for k in tasks), "mean acc"], rows), "",
            *notes, ""]


def plan_page(data: dict[str, dict]) -> str:
    """docs/results/plan.md from every ``plan_<model>`` data file."""
    lines = ["# Budgeted compression plans (`rhojax plan`)", "", HEADER, "",
             "What the targets, the cost model and the baselines are: [docs/plan.md](../plan.md).", ""]
    found = {name: d for name, d in data.items() if name.startswith("plan_")}
    if not found:
        return "\n".join([*lines, "No data yet: run `scripts/plan_results.py`.", ""])
    for name, d in found.items():
        s = d["settings"]
        joined = {k: ", ".join(map(str, s[k])) for k in ("methods", "sparsities", "measured_sparsities",
                                                          "rank_fractions", "bits")}
        compared = [t for t in d["targets"] if not t.get("plan_only")]
        stem = f"plan_{d['model']}_"
        variant = name.removeprefix(stem) if name.startswith(stem) else ""  # plan_<model>_<variant>: a second file
        lines += [f"## {d.get('title') or d['model'] + (f' ({variant})' if variant else '')}", "",
                  f"Settings: calibration seeds {', '.join(map(str, d.get('seeds', [s['seed']])))} (a seed draws the "
                  f"calibration windows, the perturbations and the fit sample); {num(s['calib_tokens'])} calibration "
                  f"tokens of {s['calib_text']}; evaluation on {num(s['tokens'])} tokens of {s['text']}"
                  f"{comparison_note(s['tokens'])}; loss increases from `{s['delta_source']}` ({s['fit_sites']} "
                  f"candidates measured end to end"
                  f"{' and every block removal' if 'fit_sites' in d['targets'][0] else ''}); "
                  f"grid: {joined['methods']} at {joined['sparsities']} (measured "
                  f"at {joined['measured_sparsities']}){', 2:4' if s['nm'] else ''}, ranks {joined['rank_fractions']}"
                  f" of min(in, out), RTN {joined['bits']} bits with groups of {s['group_size']}"
                  f"{', block removal' if s['removal'] else ''}. {d.get('note', '')}.", ""]
        lines += plan_seed_summary(compared)
        applied = [t for t in d["targets"] if "measured_delta_loss" in t["plan"]]
        if applied:
            lines += plan_prediction(applied)
        lines += plan_depth_exponent(compared)
        if compared and "loss_curve_fit" in compared[0]:
            lines += proxy_by_depth(compared[0])
        if d.get("zero_shot"):
            lines += plan_zero_shot(d["zero_shot"])
        lines += ["### Every run", ""]
        for t in compared:
            lines += plan_target(t)
        lines += [source_note(d, name), *earlier_runs_note(d), ""]
    for name, d in ((n, d) for n, d in data.items() if n.startswith("gamma_fitted_")):
        lines += [f"## Ablation: always fitting the depth exponent ({d['model']})", "",
                  "The same measurements and targets (with the targets planned without baselines) planned with "
                  "`amplification=fitted`: the fitted `gamma` used even where the F-test does not reject "
                  f"`gamma = 1`. {ablation_summary(d['targets'])} (To rerun: the command below with "
                  "`--set amplification=fitted`.)", "",
                  *plan_depth_exponent(d["targets"]), source_note(d, name), ""]
    return "\n".join(lines)


def quick_grids(data: dict[str, dict]) -> str:
    """docs/plan.md: the quick budget's plan against uniform Wanda on four grids (scripts/quick_plan_grids.py)."""
    d = data.get("quick_plan_grids")
    if d is None:
        return "No data yet: run `scripts/quick_plan_grids.py`."
    what = {"wide_with_removal": "Wanda 30/50/70% and block removal (the first `quick`)",
            "wide": "Wanda 30/50/70%, no removal",
            "narrow_tested": "Wanda 40/50/60%, no removal, depth exponent tested",
            "narrow": "Wanda 40/50/60%, no removal, the profile's amplification (`quick` now)"}
    rows = []
    for g in d["grids"]:
        p, removed = g["plan"], g["plan"]["removed_layers"]
        ratio, ci = g["plan_vs_best_baseline"], g["plan_vs_best_baseline_ci"]
        exponent = g.get("depth_exponent")
        used = (f" (`gamma` {num(exponent['best_gamma'])}, p = {num(exponent['p_value'])}, {exponent['sites']} sites)"
                if exponent and g["grid"] == "narrow_tested" else "")
        rows.append([what.get(g["grid"], g["grid"]) + used,
                     f"{num(p['perplexity'])} {interval(p['perplexity_ci'])}"
                     + (f", removes block(s) {removed}" if removed else ""),
                     f"{num(g['uniform_wanda']['perplexity'])}", f"x{num(ratio)} {interval(ci)}"
                     + (" within the noise" if ci[0] <= 1 <= ci[1] else "")
                     + ("" if g["best_baseline"] == "uniform_wanda" else f" (best baseline: `{g['best_baseline']}`)")])
    tokens = d["settings"][d["grids"][0]["grid"]]["tokens"]
    return "\n".join([
        f"`{d['model']}`, target `{d['target']}`, {num(tokens)} evaluation tokens{comparison_note(tokens)}; the "
        "ratio is the plan's perplexity over the best baseline's (uniform Wanda in every row) with its paired 95% "
        "interval.", "",
        md_table(["quick grid", "plan perplexity (95%)", "uniform Wanda", "plan / best baseline (paired 95%)"], rows),
        "", source_note(d, "quick_plan_grids")])


def sparsegpt_scope(data: dict[str, dict]) -> str:
    """docs/plan.md: uniform SparseGPT with the block-wide and the per-channel mask, and 2:4 (sparsegpt_scope.py)."""
    d = data.get("sparsegpt_scope")
    if d is None:
        return "No data yet: run `scripts/sparsegpt_scope.py`."
    names = {"sparsegpt": "`sparsegpt` (mask per 128-input block)", "sparsegpt_row": "`sparsegpt_row` (mask per "
             "output channel)", "sparsegpt_2:4": "2:4 SparseGPT",
             "sparsegpt_on_attention_only": "block-wide mask on q, k, v, o; per channel on the MLP",
             "sparsegpt_on_mlp_only": "block-wide mask on gate, up, down; per channel on attention"}
    q = d["rows"][0]["models"][0]["channel_sparsity"]["quantiles"]
    lo, hi = q.index(0.01), q.index(0.99)
    rows = []
    for r in d["rows"]:
        for m in r["models"]:
            ratio, ci = m["vs_sparsegpt"], m["vs_sparsegpt_ci"]
            spread = m["channel_sparsity"]["all"]
            rows.append([f"`{r['model']}`", names.get(m["method"], m["method"]),
                         f"{num(m['perplexity'])} {interval(m['perplexity_ci'])}",
                         "1" if m["method"] == "sparsegpt" else f"x{num(ratio)} {interval(ci)}"
                         + (" within the noise" if ci[0] <= 1 <= ci[1] else ""),
                         f"{num(spread[lo], 2)} / {num(spread[q.index(0.5)], 2)} / {num(spread[hi], 2)}"
                         f" (all: {num(spread[0], 2)}-{num(spread[-1], 2)})"])
    tokens = d["settings"]["tokens"]
    return "\n".join([
        f"Uniform {num(d['sparsity'])} sparsity on every block matrix (2:4 is 0.5), built with sequential calibration "
        f"on {num(d['settings']['stats_tokens'])} statistics tokens, {num(tokens)} evaluation tokens"
        f"{comparison_note(tokens)}. The ratio is paired (same windows) with its 95% interval; the channel spread "
        "is the per-output-channel sparsity over every channel of every matrix.", "",
        md_table(["model", "method", "perplexity (95%)", "vs `sparsegpt` (paired 95%)",
                  "channel sparsity 1% / median / 99% (all: min-max)"], rows),
        *scope_depth(d, names), "", source_note(d, "sparsegpt_scope")])


def scope_depth(d: dict, names: dict[str, str]) -> list[str]:
    """Lines of the depth table of :func:`sparsegpt_scope`: each model's deviation from the dense hidden states."""
    rows = []
    for r in d["rows"]:
        for m in r["models"]:
            track = m.get("deviation_by_depth")
            if track is None:
                continue
            L = len(track["all"]) - 1
            depths = [L // 4, L // 2, 3 * L // 4, L]
            rows.append([f"`{r['model']}`", names.get(m["method"], m["method"]),
                         *(f"{num(track['all'][k], 2)} ({num(track['bos'][k], 2)} / {num(track['rest'][k], 2)})"
                           for k in depths),
                         f"{num(100 * track['top_dims_share'][L // 2], 2)}%"])
    if not rows:
        return []
    return ["", "Where the models part from the dense one: the relative deviation of the hidden states "
            "`||h'_l - h_l|| / ||h_l||` at a quarter, half, three quarters and all of the depth (in brackets: at "
            "the first token, BOS, and at the others), and the share of the squared deviation at half depth on the "
            "dense model's 8 largest residual dimensions there.", "",
            md_table(["model", "method", "1/4 of the depth", "1/2", "3/4", "output", "on the 8 largest dims"], rows)]


#: Regions of hand-written files that are rendered from data: file -> {region name: renderer}.
REGIONS: dict[str, dict[str, Callable[[dict[str, dict]], str]]] = {
    "README.md": {"budgets": budgets},
    "docs/performance.md": {**_performance_renderers(), "streaming": layer_streaming},
    "docs/plan.md": {"quick_grids": quick_grids, "sparsegpt_scope": sparsegpt_scope},
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
    "docs/results/plan.md": plan_page,
    "docs/results/models.md": models_page,
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
