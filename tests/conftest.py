"""Shared fixtures. The packaged SmolLM2 is loaded once per test process."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from rhojax.data.windows import corpus_windows
from rhojax.io.resolve import Model, load_model


@functools.cache
def _smollm2() -> Model:
    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2() -> Model:
    """The packaged SmolLM2-135M (float32), loaded once per process."""
    return _smollm2()


@functools.cache
def _windows(split: str, num: int, seq_len: int) -> np.ndarray:
    return corpus_windows(_smollm2().tokenizer, "wiki", split, num * seq_len, seq_len)


@pytest.fixture(scope="session")
def smollm2_windows():
    """``windows(split, num, seq_len)``: cached SmolLM2 token windows from the wiki corpus."""
    return _windows
