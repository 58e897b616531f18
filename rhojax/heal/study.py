"""One healing run of a loaded compressed model: evaluate, heal, evaluate, save (resumable).

Protocol: training windows come from the CALIBRATION split only; perplexity from EVALUATION-split
windows; zero-shot accuracy from the first ``task_limit`` validation items of each task. With a
dense reference model, ``gap_recovered = (ppl_before - ppl_after) / (ppl_before - ppl_dense)``.
Files in ``out``: ``heal.json`` (settings, compression found, losses, before/after/dense results),
``state/`` (orbax adapter and optimizer state; a rerun resumes from it), ``model/`` (the healed
model as a rhojax orbax checkpoint, loadable with ``load_model``) and, if asked, ``model_hf/`` (the
same as Hugging Face safetensors).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows
from rhojax.eval.perplexity import perplexity
from rhojax.eval.tasks import evaluate
from rhojax.heal.core import HealSettings, check_compressed, check_settings, heal
from rhojax.io.checkpoint import save_checkpoint
from rhojax.io.resolve import Model
from rhojax.io.save_hf import save_hf
from rhojax.report.jsonio import write_json


@dataclasses.dataclass(frozen=True)
class HealProtocol:
    """Token budgets and evaluation set of a healing run (saved with the results)."""

    calib_tokens: int = 65536
    eval_tokens: int = 4096
    seq_len: int = DEFAULT_SEQ_LEN
    train_seq_len: int | None = None  # calibration window length for training (default: seq_len)
    tasks: str = "arc_easy,piqa"
    task_limit: int = 100
    batch_size: int = 4


def evaluate_params(model: Model, params: dict, windows: np.ndarray, protocol: HealProtocol) -> dict:
    """Evaluation-split perplexity and zero-shot accuracy of ``params`` (with ``model``'s config and tokenizer)."""
    ppl = perplexity(model.config, params, windows, batch_size=protocol.batch_size)
    out = {"perplexity": ppl.perplexity, "scored_tokens": ppl.scored_tokens}
    if protocol.tasks:
        results = evaluate(model.config, params, model.tokenizer, protocol.tasks, limit=protocol.task_limit)
        out["tasks"] = {name: {"acc": r.acc, "acc_stderr": r.acc_stderr, "acc_norm": r.acc_norm, "items": r.items}
                        for name, r in results.items()}
        out["mean_acc"] = float(np.mean([r.acc for r in results.values()]))
    return out


def heal_study(
    model: Model,
    out: Path,
    settings: HealSettings,
    protocol: HealProtocol = HealProtocol(),
    *,
    dense: Model | None = None,
    metadata: dict | None = None,
    save_hf_copy: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Heal ``model`` (which must be compressed, see :func:`check_compressed`) and write the run to ``out``."""
    out = Path(out)
    check_settings(model.config, settings)
    compression = check_compressed(model.config, model.params, quant_bits=settings.quant_bits,
                                   dense_layers=None if dense is None else dense.config.num_layers)
    train_len = protocol.train_seq_len or protocol.seq_len
    calibration = corpus_windows(model.tokenizer, "wiki", "calibration", protocol.calib_tokens, train_len)
    evaluation = corpus_windows(model.tokenizer, "wiki", "evaluation", protocol.eval_tokens, protocol.seq_len)
    record = {**(metadata or {}), "settings": dataclasses.asdict(settings), "protocol": dataclasses.asdict(protocol),
              "compression": compression, "calibration_windows": len(calibration)}
    record["before"] = evaluate_params(model, model.params, evaluation, protocol)
    if dense is not None:
        record["dense"] = evaluate_params(dense, dense.params, evaluation, protocol)
    start = time.perf_counter()
    result = heal(model.config, model.params, calibration, settings, state_dir=out / "state", on_step=on_step)
    record |= {"train_seconds": time.perf_counter() - start, "resumed_from_step": result.start_step,
               "losses": result.losses}
    record["after"] = evaluate_params(model, result.params, evaluation, protocol)
    if dense is not None:
        gap = record["before"]["perplexity"] - record["dense"]["perplexity"]
        record["gap_recovered"] = (record["before"]["perplexity"] - record["after"]["perplexity"]) / gap
    save_checkpoint(model.config, result.params, out / "model", tokenizer=model.tokenizer,
                    metadata={"healed_from": model.spec, "settings": dataclasses.asdict(settings)})
    if save_hf_copy:
        save_hf(model.config, result.params, out / "model_hf", tokenizer=model.tokenizer)
    write_json(out / "heal.json", record)
    return record
