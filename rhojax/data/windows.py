"""Fixed-length token windows for calibration and evaluation.

Protocol (used by every rhojax number): documents are tokenized without special tokens and
concatenated into one stream, separated by the tokens of a blank line. The stream is cut into
consecutive, non-overlapping chunks of ``seq_len - 1`` tokens and each window is
``[BOS] + chunk``. BOS is explicit because SmolLM2's tokenizer does not add it, and models with
attention sinks behave differently without it. Perplexity scores the ``seq_len - 1`` text tokens
of each window (the prediction made at BOS included), so ``n`` windows score ``n * (seq_len - 1)``
tokens.
"""

from __future__ import annotations

import numpy as np

from rhojax.data.corpora import Split, documents
from rhojax.errors import DataError
from rhojax.io.tokenizer import Tokenizer

DEFAULT_SEQ_LEN = 512


def windows_for_budget(tokens: int, seq_len: int) -> int:
    """Number of windows covering a budget of ``tokens`` window positions (at least one)."""
    if seq_len < 2:
        raise DataError(f"--seq-len {seq_len}: a window needs at least 2 tokens")
    return max(1, tokens // seq_len)


def token_windows(tokenizer: Tokenizer, docs: list[str], seq_len: int, num_windows: int) -> np.ndarray:
    """``(num_windows, seq_len)`` int32 windows ``[BOS] + chunk`` from the start of ``docs``."""
    bos = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id
    if bos is None:
        raise DataError("the tokenizer has neither a BOS nor an EOS token to start windows with")
    chunk = seq_len - 1
    needed = num_windows * chunk
    separator = tokenizer.encode("\n\n")
    stream: list[int] = []
    for start in range(0, len(docs), 64):
        for ids in tokenizer.encode_batch(docs[start : start + 64]):
            stream.extend(ids)
            stream.extend(separator)
        if len(stream) >= needed:
            break
    if len(stream) < needed:
        raise DataError(
            f"the text has {len(stream)} tokens, enough for {len(stream) // chunk} windows of {seq_len}; "
            f"{num_windows} were asked for: lower --tokens or use a larger --text"
        )
    body = np.asarray(stream[:needed], dtype=np.int32).reshape(num_windows, chunk)
    return np.concatenate([np.full((num_windows, 1), bos, np.int32), body], axis=1)


def corpus_windows(
    tokenizer: Tokenizer, source: str, split: Split, tokens: int, seq_len: int = DEFAULT_SEQ_LEN
) -> np.ndarray:
    """Windows from a named corpus or a text file, sized to a token budget."""
    return token_windows(tokenizer, documents(source, split), seq_len, windows_for_budget(tokens, seq_len))
