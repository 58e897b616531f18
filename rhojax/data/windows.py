"""Fixed-length token windows for calibration and evaluation, cut from text tokenized as text.

Protocol (used by every rhojax number):

1. The text is tokenized **as one text**, without special tokens: a user's file exactly as it is, a
   corpus of separate documents after joining its documents with a blank line
   (:data:`rhojax.data.corpora.DOCUMENT_JOIN`). Token lists are never spliced together: a separator
   encoded on its own is not what the tokenizer produces in running text (SmolLM2 encodes ``"\\n\\n"``
   alone as one token, but a paragraph break before a word as two ``"\\n"`` tokens).
2. The first ``num_windows * (seq_len - 1)`` ids are cut into consecutive chunks and each window is
   ``[BOS] + chunk``. BOS is explicit because SmolLM2's tokenizer does not add it and models with
   attention sinks behave differently without it (a tokenizer without BOS starts windows with EOS).
3. Perplexity scores the ``seq_len - 1`` text tokens of each window (the prediction made at BOS
   included), so ``n`` windows score ``n * (seq_len - 1)`` tokens.

Only a prefix of a long text is tokenized (:func:`encode_prefix`): it is cut at a space between two
letters, where byte-level BPE tokenizers (GPT-2, Llama-3, Qwen, SmolLM2) always start a new
pre-token, so the prefix's ids are exactly the first ids of the whole text's tokenization; the last
:data:`PREFIX_MARGIN` ids of a prefix are never used, as a guard for tokenizers without a whitespace
pre-tokenizer.
"""

from __future__ import annotations

import re

import numpy as np

from rhojax.data.corpora import Split, source_text
from rhojax.errors import DataError
from rhojax.io.tokenizer import Tokenizer

DEFAULT_SEQ_LEN = 512
#: Ids at the end of a tokenized prefix that are discarded (see the module docstring).
PREFIX_MARGIN = 16
_SAFE_CUT = re.compile(r"(?<=[^\W\d_]) (?=[^\W\d_])")
_CHARS_PER_TOKEN_GUESS = 8


def windows_for_budget(tokens: int, seq_len: int) -> int:
    """Number of windows covering a budget of ``tokens`` window positions (at least one)."""
    if seq_len < 2:
        raise DataError(f"seq_len {seq_len}: a window needs at least 2 tokens")
    return max(1, tokens // seq_len)


def safe_cut(text: str, end: int) -> int | None:
    """The last position ``<= end`` of a space between two letters in ``text`` (None if there is none).

    ``text[:cut]`` ends inside a run of letters that the space ends, and ``text[cut:]`` starts a new
    space-led word: a whitespace-splitting pre-tokenizer places a boundary exactly there.
    """
    for lookback in (4096, 65536, end):
        start = max(0, end - lookback)
        last = None
        for match in _SAFE_CUT.finditer(text, start, min(len(text), end + 1)):
            last = match.start()
        if last is not None:
            return last
        if start == 0:
            return None
    return None


def encode_prefix(tokenizer: Tokenizer, text: str, needed: int) -> np.ndarray:
    """The first ``needed`` ids of ``tokenizer.encode(text)`` (all of them if the text is shorter).

    Tokenizes growing prefixes of ``text`` cut by :func:`safe_cut` until one yields ``needed``
    ids plus :data:`PREFIX_MARGIN`; the whole text is tokenized when no shorter prefix suffices.
    """
    length = max(1024, needed * _CHARS_PER_TOKEN_GUESS)
    while length < len(text):
        cut = safe_cut(text, length)
        if cut is not None and cut > 0:
            ids = tokenizer.encode(text[:cut])
            if len(ids) >= needed + PREFIX_MARGIN:
                return np.asarray(ids[:needed], dtype=np.int32)
        length *= 2
    return np.asarray(tokenizer.encode(text)[:needed], dtype=np.int32)


def window_start_id(tokenizer: Tokenizer) -> int:
    """The id that starts every window: BOS, or EOS for tokenizers without one."""
    start = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id
    if start is None:
        raise DataError("the tokenizer has neither a BOS nor an EOS token to start windows with")
    return start


def chunk_length(seq_len: int) -> int:
    """Text tokens per window, ``seq_len - 1`` (BOS takes the first position); a one-line error below 2."""
    if seq_len < 2:
        raise DataError(f"seq_len {seq_len}: a window needs at least 2 tokens")
    return seq_len - 1


def text_windows(tokenizer: Tokenizer, text: str, seq_len: int, num_windows: int) -> np.ndarray:
    """``(num_windows, seq_len)`` int32 windows ``[BOS] + chunk`` from the start of ``text``."""
    ids = encode_prefix(tokenizer, text, num_windows * chunk_length(seq_len))
    return id_windows(tokenizer, ids, seq_len, num_windows)


def id_windows(tokenizer: Tokenizer, ids: np.ndarray, seq_len: int, num_windows: int) -> np.ndarray:
    """``(num_windows, seq_len)`` windows ``[BOS] + chunk`` cut from the start of the token ids ``ids``."""
    start = window_start_id(tokenizer)
    chunk = chunk_length(seq_len)
    needed = num_windows * chunk
    ids = ids[:needed]
    if len(ids) < needed:
        raise DataError(
            f"the text has {len(ids)} tokens, enough for {len(ids) // chunk} windows of {seq_len}; "
            f"{num_windows} were asked for: ask for fewer tokens or give a longer text"
        )
    body = ids.reshape(num_windows, chunk)
    return np.concatenate([np.full((num_windows, 1), start, np.int32), body], axis=1)


#: A seeded draw picks its windows among the first ``DRAW_POOL`` times as many consecutive ones.
DRAW_POOL = 8


def drawn_windows(tokenizer: Tokenizer, text: str, seq_len: int, num_windows: int, seed: int) -> np.ndarray:
    """``num_windows`` windows drawn without replacement (in text order) from the first
    ``DRAW_POOL * num_windows`` windows of ``text`` (fewer when the text is shorter, at least
    ``num_windows``), by a NumPy generator seeded with ``seed``: another calibration sample of the same text."""
    chunk = chunk_length(seq_len)
    ids = encode_prefix(tokenizer, text, DRAW_POOL * num_windows * chunk)  # tokenized once
    pool = id_windows(tokenizer, ids, seq_len, max(num_windows, len(ids) // chunk))
    pick = np.sort(np.random.default_rng(seed).choice(len(pool), size=num_windows, replace=False))
    return pool[pick]


def corpus_windows(
    tokenizer: Tokenizer,
    source: str,
    split: Split | None = None,
    tokens: int = 4 * DEFAULT_SEQ_LEN,
    seq_len: int = DEFAULT_SEQ_LEN,
    seed: int = 0,
) -> np.ndarray:
    """Windows from a named corpus (``split`` required) or a user's text file (``split`` ignored),
    ``tokens // seq_len`` of them (at least one): the first ones for ``seed`` 0, else :func:`drawn_windows`."""
    text, count = source_text(source, split), windows_for_budget(tokens, seq_len)
    if seed == 0:
        return text_windows(tokenizer, text, seq_len, count)
    return drawn_windows(tokenizer, text, seq_len, count, seed)
