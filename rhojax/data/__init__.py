"""Text and token windows: offline corpora with a deterministic calibration / evaluation split.

:func:`corpus_windows` gives ``(N, T)`` int32 windows ``[BOS] + chunk`` from a named corpus (``wiki``,
``lambada``, ``news``; ``split`` required and checked against :data:`SPLITS`) or from a user's text file
(no split needed); :func:`text_windows` does the same for a string. Definitions:
docs/definitions.md#corpora-and-the-split-rule and docs/definitions.md#windows.
"""

from rhojax.data.corpora import BUILTIN_SOURCES, SPLITS, check_split, source_text, statistics_split
from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows, text_windows, windows_for_budget

__all__ = [
    "BUILTIN_SOURCES",
    "DEFAULT_SEQ_LEN",
    "SPLITS",
    "check_split",
    "corpus_windows",
    "source_text",
    "statistics_split",
    "text_windows",
    "windows_for_budget",
]
