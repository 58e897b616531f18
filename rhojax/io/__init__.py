"""Loading and saving models: packaged names, Hugging Face folders, GGUF files, tokenizers.

:func:`load_model` (the top-level ``rhojax.load``) resolves a spec to a :class:`Model`; :func:`save_hf`
writes ``(config, params)`` as a Hugging Face folder that ``transformers`` and rhojax both load;
:func:`open_blocks` opens a model larger than memory as a :class:`BlockStream` (one block at a time).
"""

from rhojax.io.gguf_file import load_gguf
from rhojax.io.hf import load_hf_folder
from rhojax.io.resolve import DTYPES, PACKAGED_MODELS, Model, describe, load_model
from rhojax.io.save_hf import save_hf
from rhojax.io.stream import BlockStream, open_blocks
from rhojax.io.tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "DTYPES",
    "BlockStream",
    "PACKAGED_MODELS",
    "Model",
    "Tokenizer",
    "describe",
    "load_gguf",
    "load_hf_folder",
    "load_model",
    "load_tokenizer",
    "open_blocks",
    "save_hf",
]
