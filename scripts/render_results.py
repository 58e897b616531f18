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
            f"{num(wall, 3)} s wall.")


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
        "## Reading", "",
        f"- rhojax and transformers agree within {pct(max(abs(c['relative_difference']) for c in cases.values()), 3)} "
        "in every row, and build identical windows from the same text.",
        f"- The splice used before the fix raised perplexity to {num(spliced['rhojax'])} against "
        f"{num(blank['rhojax'])} for the same articles tokenized as text "
        f"({pct(spliced['rhojax'] / blank['rhojax'] - 1, 1)}): the separately tokenized blank line is a token "
        "the model rarely sees between paragraphs of running text.",
        f"- Joining with EOS gives {num(eos['rhojax'])} against {num(blank['rhojax'])} for the blank-line text join "
        f"({pct(eos['rhojax'] / blank['rhojax'] - 1, 1)}). rhojax joins documents as text with a blank line: it is "
        "what a user's file looks like, it needs no assumption about which special token a chat-tuned model's "
        f"pre-training used between documents (this tokenizer's EOS is id {s['eos_id']}), and it is the rule "
        "used for every perplexity in these pages.", "",
        source_note(ref, "reference_perplexity"), "",
    ]
    return "\n".join(lines)


HEADER = "<!-- Generated by scripts/render_results.py from docs/results/data/; do not edit. -->"


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


def propagation(data: dict[str, dict]) -> str:
    found = analysis(data)
    if found is None:
        return _no_analysis("Contraction profile")
    name, r = found
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


def sensitivity(data: dict[str, dict]) -> str:
    found = analysis(data)
    if found is None:
        return _no_analysis("Per-matrix sensitivity")
    name, r = found
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


PAGES: dict[str, Callable[[dict[str, dict]], str]] = {
    "docs/results/foundation.md": foundation,
    "docs/results/propagation.md": propagation,
    "docs/results/sensitivity.md": sensitivity,
}


def render_all(data: dict[str, dict] | None = None) -> dict[str, str]:
    """Page path (relative to the repository) -> its text."""
    data = load_data() if data is None else data
    return {path: page(data) for path, page in PAGES.items()}


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
