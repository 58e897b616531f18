"""The zero-shot accuracy study: lm-evaluation-harness prompts and metrics on the packaged task data.

:class:`EvalSettings` holds every default. :func:`run_eval_study` scores each task as one part of a
:class:`~rhojax.runs.RunFolder` (``parts/task_<name>.json``, per-item predictions included), so a
killed run resumes at the task in flight, and returns the per-task summaries.
"""

from __future__ import annotations

import dataclasses

from rhojax.eval.task_data import TASKS, task_data_path
from rhojax.eval.tasks import evaluate_task, parse_task_names
from rhojax.progress import SILENT, Progress
from rhojax.runs import RunFolder
from rhojax.settings import setting


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Tasks, item limit and request batching of a zero-shot evaluation."""

    tasks: tuple[str, ...] = setting(("all",), f"Task names or 'all': {', '.join(TASKS)}.")
    limit: int | None = setting(None, "Score only the first N items of each task (default: every item).")
    batch_size: int = setting(16, "Sequences per jitted call.")
    prepend_bos: bool = setting(False, "Prepend BOS to every request (lm-evaluation-harness adds none).")

    def task_names(self) -> list[str]:
        """The tasks to score, checked (names and data) before any scoring starts."""
        names = parse_task_names(list(self.tasks))
        for name in names:
            task_data_path(name)
        return names


def run_eval_study(model, run: RunFolder, settings: EvalSettings = EvalSettings(), *,
                   progress: Progress = SILENT) -> dict:
    """Score ``model`` on every task of ``settings`` (run or resumed in ``run``).

    Returns ``{"settings", "tasks": {name: accuracy, stderr, acc_norm, items, perplexity}}``; the
    per-item predictions stay in the parts (``run.part(f"task_{name}", ...)`` reads them back).
    """
    s = settings
    names = s.task_names()
    summaries = {}
    with progress.stage(f"zero-shot tasks ({len(names)} x 100% of requests)", 100 * len(names)) as update:
        for i, name in enumerate(names):
            result = run.part(f"task_{name}", lambda name=name, base=100 * i: evaluate_task(
                model.config, model.params, model.tokenizer, name, limit=s.limit, batch_size=s.batch_size,
                prepend_bos=s.prepend_bos, on_batch=lambda done, total: update(base + 100 * done // total)).to_dict())
            summaries[name] = {k: v for k, v in result.items() if k != "predictions"}
            update(100 * (i + 1))
    return {"settings": dataclasses.asdict(s), "tasks": summaries}
