"""Zero-shot accuracy on HellaSwag, ARC-Easy/Challenge, PIQA, Winogrande and LAMBADA.

Metrics follow lm-evaluation-harness, with ``ll_i`` the summed log-likelihood of request ``i``:

- ``acc = mean[argmax_i ll_i == gold]``; ``acc_norm = mean[argmax_i ll_i / len(choice_i) == gold]``
  with ``len`` in characters of the choice string (no leading space), for the four
  multiple-choice tasks;
- Winogrande (partial scoring): ``acc`` only, ``ll_i`` is the shared continuation given option i;
- LAMBADA: ``acc = mean[greedy]`` and ``perplexity = exp(-mean ll)``;
- ``stderr = sample std (ddof=1) / sqrt(n)``.

Ties go to the first choice (``np.argmax``). Prompts and splits: :mod:`rhojax.eval.task_data`.
``evaluate`` works on any ``(config, params)`` pytree, including models with layers removed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from rhojax.eval.loglikelihood import encode_request, score_requests
from rhojax.eval.task_data import TASKS, TaskItem, available_tasks, load_task, parse_task_names, task_data_path
from rhojax.io.tokenizer import Tokenizer
from rhojax.models.config import ModelConfig

__all__ = ["TASKS", "TaskResult", "available_tasks", "evaluate", "evaluate_task", "parse_task_names", "score_items"]


@dataclasses.dataclass(frozen=True)
class ItemPrediction:
    """One item: ``pred`` indexes the choices (LAMBADA: 0 when the greedy continuation is the last word)."""

    item_id: str
    gold: int
    pred: int
    pred_norm: int | None
    logliks: tuple[float, ...]
    greedy: tuple[bool, ...]


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """Accuracy of one task over ``items`` items, with standard errors, and every item's prediction."""

    task: str
    items: int
    acc: float
    acc_stderr: float
    acc_norm: float | None
    acc_norm_stderr: float | None
    perplexity: float | None  # LAMBADA only
    predictions: tuple[ItemPrediction, ...]

    def summary(self) -> dict:
        """Every field but the per-item predictions."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "predictions"}

    def to_dict(self) -> dict:
        """Every field as plain data (for JSON)."""
        return dataclasses.asdict(self)


def mean_stderr(values: np.ndarray) -> tuple[float, float]:
    """``(mean, std(ddof=1) / sqrt(n))``; the error is 0 for a single value."""
    values = np.asarray(values, np.float64)
    err = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return float(values.mean()), err


def score_items(task: str, items: list[TaskItem], logliks: list[np.ndarray], greedy: list[np.ndarray]) -> TaskResult:
    """Metrics of ``task`` from each item's per-request log-likelihoods and greedy flags."""
    metric = TASKS[task].metric
    predictions = []
    for item, ll, gr in zip(items, logliks, greedy, strict=True):
        pred = int(np.argmax(ll)) if metric != "greedy" else int(not gr[0])
        pred_norm = None
        if metric == "multiple_choice":
            pred_norm = int(np.argmax(ll / np.array([len(c) for c in item.choices], np.float64)))
        predictions.append(
            ItemPrediction(item.item_id, item.gold, pred, pred_norm, tuple(map(float, ll)), tuple(map(bool, gr)))
        )
    acc, acc_err = mean_stderr(np.array([p.pred == p.gold for p in predictions]))
    acc_norm = acc_norm_err = perplexity = None
    if metric == "multiple_choice":
        acc_norm, acc_norm_err = mean_stderr(np.array([p.pred_norm == p.gold for p in predictions]))
    if metric == "greedy":
        perplexity = math.exp(-float(np.mean([p.logliks[0] for p in predictions])))
    return TaskResult(task, len(items), acc, acc_err, acc_norm, acc_norm_err, perplexity, tuple(predictions))


def evaluate_task(
    config: ModelConfig,
    params: dict,
    tokenizer: Tokenizer,
    task: str,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    prepend_bos: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> TaskResult:
    """Score the first ``limit`` items of ``task``; ``on_batch(requests_done, requests_total)``."""
    items = load_task(task, limit)
    requests = [
        encode_request(tokenizer, context, continuation, prepend_bos=prepend_bos)
        for item in items
        for context, continuation in zip(item.contexts, item.continuations, strict=True)
    ]
    total = len(requests)
    loglik, greedy = score_requests(
        config, params, requests, batch_size=batch_size,
        on_batch=None if on_batch is None else lambda done: on_batch(done, total),
    )
    bounds = np.cumsum([0] + [len(item.contexts) for item in items])
    return score_items(
        task,
        items,
        [loglik[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        [greedy[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
    )


def evaluate(
    config: ModelConfig,
    params: dict,
    tokenizer: Tokenizer,
    tasks: str | list[str],
    *,
    limit: int | None = None,
    batch_size: int = 16,
    prepend_bos: bool = False,
    on_batch: Callable[[str, int, int], None] | None = None,
) -> dict[str, TaskResult]:
    """Zero-shot results of ``(config, params)`` on ``tasks`` (names, comma-separated or ``all``).

    ``limit`` keeps the first N items of each task. ``on_batch(task, requests_done, requests_total)``
    reports progress. Unknown names or missing data raise :class:`~rhojax.errors.DataError`
    listing the available tasks (checked for every task before any scoring starts).
    """
    names = parse_task_names(tasks)
    for name in names:
        task_data_path(name)
    results = {}
    for name in names:
        results[name] = evaluate_task(
            config, params, tokenizer, name, limit=limit, batch_size=batch_size, prepend_bos=prepend_bos,
            on_batch=None if on_batch is None else lambda done, total, name=name: on_batch(name, done, total),
        )
    return results
