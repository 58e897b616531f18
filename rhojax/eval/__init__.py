"""Evaluation: next-token loss and perplexity, bootstrap intervals, zero-shot task accuracy.

- Traceable (``jax.Array`` in and out; ``jit``/``vmap``/``grad``): :func:`nll_sums` (per-window summed NLL
  and scored-token counts), :func:`mean_nll`, :func:`token_nll`, :func:`window_nll`.
- NumPy summaries on top: :func:`window_nll_sums` (batched, with progress), :func:`perplexity_from_nll`
  (a :class:`PerplexityResult`), :func:`perplexity_ci` and :func:`ratio_ci` (paired bootstrap over windows).
- Tasks: :func:`evaluate` (HellaSwag, ARC, PIQA, Winogrande, LAMBADA; see :data:`TASKS`).

The top-level ``rhojax.loss`` and ``rhojax.perplexity`` are :func:`mean_nll` and its exponential.
"""

from rhojax.eval.intervals import bootstrap_indices, perplexity_ci, ratio_ci
from rhojax.eval.loss import mean_nll, nll_sums
from rhojax.eval.perplexity import (
    PerplexityResult,
    final_state_nll,
    perplexity_from_nll,
    token_nll,
    window_nll,
    window_nll_sums,
)
from rhojax.eval.task_data import TASKS, load_task
from rhojax.eval.tasks import TaskResult, evaluate, evaluate_task

__all__ = [
    "TASKS",
    "PerplexityResult",
    "TaskResult",
    "bootstrap_indices",
    "evaluate",
    "evaluate_task",
    "final_state_nll",
    "load_task",
    "mean_nll",
    "nll_sums",
    "perplexity_ci",
    "perplexity_from_nll",
    "ratio_ci",
    "token_nll",
    "window_nll",
    "window_nll_sums",
]
