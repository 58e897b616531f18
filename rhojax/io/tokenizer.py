"""A minimal tokenizer interface over Hugging Face tokenizers (from a folder or from a GGUF file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rhojax.errors import LoadError


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """Wraps a ``transformers`` tokenizer; ``encode`` never adds special tokens (BOS is explicit)."""

    backend: object
    bos_id: int | None
    eos_id: int | None

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without special tokens."""
        return self.backend(text, add_special_tokens=False)["input_ids"]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """The ids of every text of ``texts``, without special tokens."""
        return self.backend(texts, add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids``."""
        return self.backend.decode(ids)


def load_tokenizer(folder: str | Path, gguf_file: str | None = None) -> Tokenizer:
    """Tokenizer of a Hugging Face folder, or the one embedded in ``folder/gguf_file``."""
    from transformers import AutoTokenizer

    try:
        backend = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    except Exception as e:  # transformers raises OSError/ValueError/KeyError depending on what is missing
        where = Path(folder) / gguf_file if gguf_file else Path(folder)
        raise LoadError(f"{where}: cannot build a tokenizer ({type(e).__name__}: {e})") from e
    bos = backend.bos_token_id
    eos = backend.eos_token_id
    return Tokenizer(backend=backend, bos_id=bos, eos_id=eos)
