"""Shared fixtures. The packaged SmolLM2 is loaded once per test process."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile

# One persistent XLA compilation cache per test run, shared by the xdist workers and the subprocesses the
# tests start (they inherit the environment): many tests compile the same tiny-model programs in new jit
# wrappers, and reading them back instead of recompiling takes ~13% off the suite. It is created by the
# first process (the xdist controller) and removed when it exits, so every run starts cold as CI does.
# There is no lock: an entry read while another process writes it only warns (filtered in pyproject.toml)
# and is compiled anew; jax's locked cache (JAX_COMPILATION_CACHE_MAX_SIZE) made the suite 18 minutes.
# Set before jax is imported, since jax reads these variables at import.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="rhojax-test-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

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
