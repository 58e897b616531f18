"""Real-model parity: rhojax's forward against transformers' PyTorch forward on a packaged GGUF.

Both sides read the same GGUF file: rhojax with its own loader and dequantiser, transformers with its
own GGUF loader (float32). Measured: the largest absolute logit difference on a fixed sentence and on
evaluation windows, and the perplexity of those windows on each side. The two models are held one at
a time (rhojax's logits are computed and kept, then transformers is loaded), so a 1.5B model needs
about 7 GB rather than twice that. Writes ``docs/results/data/parity_<model>.json``.

    .venv/bin/python scripts/measure_parity.py --model qwen2.5-coder-1.5b [--windows 2 --seq-len 256]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import jax.numpy as jnp
import numpy as np
import torch

from rhojax.data.windows import corpus_windows
from rhojax.eval.perplexity import perplexity_from_nll, window_nll_sums
from rhojax.io.resolve import load_model
from rhojax.models import forward
from rhojax.provenance import provenance
from rhojax.report.jsonio import write_json

SENTENCE = "The Eiffel Tower was completed in 1889 and is the most visited paid monument in the world."


def torch_logits(model, tokens: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(tokens, dtype=torch.long)).logits.float().numpy()


def nll_sums(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per-window sum of next-token negative log-likelihoods (float64), from logits (N, T, V)."""
    z = logits[:, :-1].astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, tokens[:, 1:, None], -1)[..., 0].sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or f"docs/results/data/parity_{args.model}.json"
    started, code = time.perf_counter(), provenance()  # the code the run started with
    from transformers import AutoModelForCausalLM

    model = load_model(args.model)
    sentence = np.asarray([[model.tokenizer.bos_id] + model.tokenizer.encode(SENTENCE)])
    windows = corpus_windows(model.tokenizer, "wiki", "evaluation", args.windows * args.seq_len, args.seq_len)
    ours_sentence = np.asarray(forward(model.config, model.params, jnp.asarray(sentence)))
    ours_windows = np.stack([np.asarray(forward(model.config, model.params, jnp.asarray(w[None])))[0]
                             for w in windows])
    ours_nll = window_nll_sums(model.config, model.params, windows)
    folder, name = str(model.source.parent), model.gguf_file
    del model
    gc.collect()
    reference = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    ref_sentence = torch_logits(reference, sentence)
    ref_windows = np.stack([torch_logits(reference, w[None])[0] for w in windows])
    ref_nll = nll_sums(ref_windows, windows)
    ppl_ours, ppl_ref = perplexity_from_nll(ours_nll, args.seq_len), perplexity_from_nll(ref_nll, args.seq_len)
    result = {
        "provenance": code,
        "settings": {"model": args.model, "windows": args.windows, "seq_len": args.seq_len, "dtype": "float32",
                     "corpus": "wiki evaluation split", "sentence": SENTENCE,
                     "reference": "transformers AutoModelForCausalLM.from_pretrained(gguf_file=...), float32"},
        "sentence_tokens": int(sentence.shape[1]),
        "sentence_max_abs_logit_diff": float(np.max(np.abs(ours_sentence - ref_sentence))),
        "sentence_max_abs_logit": float(np.max(np.abs(ref_sentence))),
        "windows_max_abs_logit_diff": float(np.max(np.abs(ours_windows - ref_windows))),
        "windows_max_abs_logit": float(np.max(np.abs(ref_windows))),
        "same_argmax_fraction": float(np.mean(ours_windows.argmax(-1) == ref_windows.argmax(-1))),
        "scored_tokens": ppl_ours.scored_tokens,
        "rhojax_perplexity": ppl_ours.perplexity,
        "transformers_perplexity": ppl_ref.perplexity,
        "relative_perplexity_difference": ppl_ours.perplexity / ppl_ref.perplexity - 1,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out, result)
    print({k: v for k, v in result.items() if k not in ("provenance", "settings")}, file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
