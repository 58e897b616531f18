"""Reference perplexities: rhojax against transformers' own tokenizer and PyTorch forward, and the join rule.

For the evaluation split of the wiki corpus (documents are separate articles) it measures two ways of
making one token stream out of separate documents, each time with rhojax and with transformers built
independently (transformers tokenizes and cuts its own ``[BOS] + (seq_len - 1)`` windows):

- ``blank_line``: the documents joined as text with a blank line and tokenized as one text (rhojax's rule);
- ``eos``: each document tokenized on its own, followed by the tokenizer's EOS id.

It also measures the protocol rhojax used before the fix (separately tokenized documents spliced with
a separately tokenized blank line), to show its bias, and a user's multi-paragraph text file read
whole. Writes ``docs/results/data/reference_perplexity.json``.

    .venv/bin/python scripts/measure_reference.py [--tokens 16384]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rhojax.data.corpora import DOCUMENT_JOIN, documents
from rhojax.data.windows import corpus_windows
from rhojax.eval.intervals import perplexity_ci
from rhojax.eval.perplexity import perplexity_from_nll, window_nll_sums
from rhojax.io.resolve import load_model
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json


def torch_window_nll(model, windows: np.ndarray, batch_size: int = 4) -> np.ndarray:
    sums = []
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            batch = torch.tensor(windows[i : i + batch_size], dtype=torch.long)
            logits = model(batch).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
            sums.append(nll.sum(-1).double().numpy())
    return np.concatenate(sums)


def cut(stream: list[int], start_id: int, seq_len: int, num: int) -> np.ndarray:
    body = np.asarray(stream[: num * (seq_len - 1)], dtype=np.int64).reshape(num, seq_len - 1)
    return np.concatenate([np.full((num, 1), start_id), body], axis=1)


def case(name: str, ours: np.ndarray, reference: np.ndarray, model, reference_model, seq_len: int) -> dict:
    """rhojax's forward on its own windows and transformers' forward on its own windows."""
    nll_ours = window_nll_sums(model.config, model.params, ours)
    nll_ref = torch_window_nll(reference_model, reference)
    ppl_ours, ppl_ref = perplexity_from_nll(nll_ours, seq_len), perplexity_from_nll(nll_ref, seq_len)
    print(f"{name}: rhojax {ppl_ours.perplexity:.4f}, transformers {ppl_ref.perplexity:.4f}", file=sys.stderr)
    return {
        "windows_identical": bool(np.array_equal(ours, reference)),
        "scored_tokens": ppl_ours.scored_tokens,
        "rhojax": ppl_ours.perplexity,
        "rhojax_ci": perplexity_ci(nll_ours, seq_len - 1),
        "transformers": ppl_ref.perplexity,
        "transformers_ci": perplexity_ci(nll_ref, seq_len - 1),
        "relative_difference": ppl_ours.perplexity / ppl_ref.perplexity - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--out", default="docs/results/data/reference_perplexity.json")
    args = parser.parse_args()
    started, code = time.perf_counter(), provenance()  # the code the run started with
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = load_model(args.model)
    folder, name = str(model.source.parent), model.gguf_file
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    reference_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    seq_len, num = args.seq_len, args.tokens // args.seq_len
    bos, eos = model.tokenizer.bos_id, model.tokenizer.eos_id
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    docs = documents("wiki", "evaluation")
    needed = num * (seq_len - 1)

    def streamed(separator: list[int]) -> list[int]:
        stream: list[int] = []
        for doc in docs:
            stream += encode(doc) + separator
            if len(stream) >= needed:
                return stream
        return stream

    cases = {}
    cases["blank_line"] = case("blank_line", corpus_windows(model.tokenizer, "wiki", "evaluation", args.tokens,
                                                            seq_len),
                               cut(encode(DOCUMENT_JOIN.join(docs)), bos, seq_len, num), model, reference_model,
                               seq_len)
    eos_windows = cut(streamed([eos]), bos, seq_len, num)
    cases["eos"] = case("eos", eos_windows, eos_windows, model, reference_model, seq_len)
    spliced = cut(streamed(encode(DOCUMENT_JOIN)), bos, seq_len, num)
    cases["spliced_before_the_fix"] = case("spliced", spliced, spliced, model, reference_model, seq_len)
    paragraphs = DOCUMENT_JOIN.join(d for d in docs if "\n" in d) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paragraphs.txt"
        path.write_text(paragraphs, encoding="utf-8")
        file_num = min(num, (len(encode(paragraphs)) - 1) // (seq_len - 1))
        cases["user_file"] = case("user_file", corpus_windows(model.tokenizer, str(path), tokens=file_num * seq_len,
                                                              seq_len=seq_len),
                                  cut(encode(path.read_text(encoding="utf-8")), bos, seq_len, file_num), model,
                                  reference_model, seq_len)
    write_json(args.out, {
        "provenance": code,
        "settings": {"model": args.model, "tokens": args.tokens, "seq_len": seq_len, "corpus": "wiki evaluation split",
                     "bos_id": bos, "eos_id": eos, "bootstrap": "1000 resamples of windows, seed 0",
                     "user_file": "the evaluation articles that have several paragraphs, joined by a blank line"},
        "cases": cases,
        "wall_seconds": round(time.perf_counter() - started, 1),
    })
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
