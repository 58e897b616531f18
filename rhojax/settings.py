"""Helpers for the frozen settings dataclass of each study (the single source of its defaults)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rhojax.data.corpora import statistics_split
from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows


def setting(default: Any, help: str) -> Any:  # noqa: A002 - the CLI's word for it
    """A settings field with its default and a one-line help text (the CLI option's help)."""
    return dataclasses.field(default=default, metadata={"help": help})


#: Settings that change how a run holds the model, never its results: left out of a run's identity, so a run
#: started whole resumes streamed and the other way round.
EXECUTION_ONLY = frozenset({"stream", "memory_budget"})


def without_execution(tree: Any) -> Any:
    """``tree`` (nested dicts) without the :data:`EXECUTION_ONLY` keys, at every level."""
    if isinstance(tree, dict):
        return {k: without_execution(v) for k, v in tree.items() if k not in EXECUTION_ONLY}
    return tree


def run_identity(model, settings: Any) -> dict:
    """What identifies a run besides the study's settings (less :data:`EXECUTION_ONLY`): model, dtype and the
    rhojax version."""
    from rhojax import __version__

    return {"model": model.spec, "dtype": model.dtype, "rhojax": __version__,
            "settings": without_execution(dataclasses.asdict(settings))}


@dataclasses.dataclass(frozen=True)
class StreamSettings:
    """How a study holds the model (a base for its settings dataclass); results do not depend on it."""

    stream: bool = setting(False, "Load and run one block at a time (resident: embeddings, one block, the "
                           "activations); profile, perplexity and sweep only.")
    memory_budget: str = setting("", "Stream automatically when the whole model would exceed this size "
                                 "(e.g. 6GB, 512MB; a bare number is GiB). Empty: no budget.")


@dataclasses.dataclass(frozen=True)
class TextSettings:
    """The texts and token budgets of a study (a base for its settings dataclass; redeclare a field to change
    its default). Statistics and fits read ``calib_text`` in its :func:`~rhojax.data.corpora.statistics_split`;
    metrics read the evaluation split of ``text``."""

    text: str = setting("wiki", "Evaluation text (its evaluation split): wiki, lambada, news or a text file.")
    calib_text: str = setting("wiki", "Calibration text (its statistics split) for statistics, scores and fits.")
    calib_tokens: int = setting(2048, "Calibration token budget: windows = calib-tokens // seq-len.")
    tokens: int = setting(4096, "Evaluation token budget: windows = tokens // seq-len.")
    seq_len: int = setting(DEFAULT_SEQ_LEN, "Window length in tokens, BOS included.")

    def calibration_windows(self, tokenizer, seed: int = 0) -> np.ndarray:
        """``(calib_tokens // seq_len, seq_len)`` windows of ``calib_text`` for statistics: its first windows,
        or for ``seed`` > 0 windows drawn from its first ones (:func:`~rhojax.data.windows.drawn_windows`)."""
        return corpus_windows(tokenizer, self.calib_text, statistics_split(self.calib_text), self.calib_tokens,
                              self.seq_len, seed)

    def evaluation_windows(self, tokenizer) -> np.ndarray:
        """``(tokens // seq_len, seq_len)`` windows of the evaluation split of ``text`` for metrics."""
        return corpus_windows(tokenizer, self.text, "evaluation", self.tokens, self.seq_len)
