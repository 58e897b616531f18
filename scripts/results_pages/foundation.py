"""docs/results/foundation.md: perplexity against transformers, the document-join rule and real-model parity."""

from __future__ import annotations

from pathlib import Path

from .common import HEADER, interval, md_table, num, pct, source_note

#: What the parity tests assert: thresholds of the tests, not measurements (the tests are the evidence).
PARITY = (Path(__file__).parent / "parity_checks.md").read_text().rstrip("\n")


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
