"""Orbax checkpoints and the converted-params cache: round trips, damaged entries, invalidation."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.errors import LoadError, RhojaxError
from rhojax.io import checkpoint
from rhojax.io.hf import load_hf_folder
from rhojax.io.resolve import load_model
from rhojax.io.save_hf import save_hf
from rhojax.models import ModelConfig, init_params

LLAMA = ModelConfig("llama", 61, 16, 2, 4, 2, 4, 24, 1e-6, max_position_embeddings=32, qkv_bias=True)
GPT2 = ModelConfig("gpt2", 61, 16, 2, 4, 4, 4, 32, 1e-5, max_position_embeddings=32, tie_embeddings=True)


def _assert_same(a: dict, b: dict) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x.astype(jnp.float32)), np.asarray(y.astype(jnp.float32)))


@pytest.mark.parametrize(("config", "dtype"), [(LLAMA, jnp.float32), (GPT2, jnp.bfloat16)])
def test_checkpoint_round_trip_is_exact(config, dtype, tmp_path):
    params = jax.tree.map(lambda a: a.astype(dtype), init_params(config, jax.random.PRNGKey(0)))
    folder = checkpoint.save_checkpoint(config, params, tmp_path / "ckpt", metadata={"note": "x"})
    assert checkpoint.read_marker(folder)["metadata"] == {"note": "x"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    loaded_config, loaded = checkpoint.load_checkpoint(folder)
    assert loaded_config == config
    _assert_same(params, loaded)
    model = load_model(str(folder))  # a checkpoint folder is a model spec
    _assert_same(jax.tree.map(lambda a: a.astype(jnp.float32), params), model.params)


def _hf_source(folder):
    params = init_params(LLAMA, jax.random.PRNGKey(1))
    save_hf(LLAMA, params, folder)
    return params


def _counting_convert(folder):
    calls = []

    def convert():
        calls.append(1)
        return load_hf_folder(folder)

    return convert, calls


def _largest_data_file(entry):
    files = [p for p in (entry / "params").rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def test_cache_converts_once_then_restores(tmp_path, monkeypatch):
    monkeypatch.setenv("RHOJAX_CACHE", str(tmp_path / "cache"))
    expected = _hf_source(tmp_path / "hf")
    convert, calls = _counting_convert(tmp_path / "hf")
    _, first = checkpoint.cached_load(tmp_path / "hf", "float32", convert, min_bytes=0)
    config, second = checkpoint.cached_load(tmp_path / "hf", "float32", convert, min_bytes=0)
    assert len(calls) == 1 and config.num_layers == LLAMA.num_layers
    _assert_same(first, second)
    _assert_same(expected, second)
    # another dtype is another entry; small sources are not cached at all by default
    checkpoint.cached_load(tmp_path / "hf", "bfloat16", convert, min_bytes=0)
    assert len(calls) == 2
    checkpoint.cached_load(tmp_path / "hf", "float32", convert)
    assert len(calls) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_marker"])
def test_damaged_cache_entry_is_rebuilt_never_used(damage, tmp_path, monkeypatch):
    monkeypatch.setenv("RHOJAX_CACHE", str(tmp_path / "cache"))
    expected = _hf_source(tmp_path / "hf")
    convert, calls = _counting_convert(tmp_path / "hf")
    checkpoint.cached_load(tmp_path / "hf", "float32", convert, min_bytes=0)
    entry = checkpoint.cache_entry(tmp_path / "hf", "float32")
    target = _largest_data_file(entry)
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))
    else:
        (entry / checkpoint.MARKER).unlink()
    if damage != "no_marker":
        with pytest.raises(LoadError, match="truncated or corrupted"):
            checkpoint.load_checkpoint(entry)
    _, params = checkpoint.cached_load(tmp_path / "hf", "float32", convert, min_bytes=0)
    assert len(calls) == 2  # converted again from the source
    _assert_same(expected, params)
    _assert_same(expected, checkpoint.load_checkpoint(entry)[1])  # and the entry is whole again


def test_restore_failure_behind_a_consistent_marker_is_a_load_error(tmp_path):
    """Even if the marker matches the damaged files, orbax's failure becomes a LoadError."""
    folder = checkpoint.save_checkpoint(LLAMA, init_params(LLAMA, jax.random.PRNGKey(2)), tmp_path / "c")
    target = _largest_data_file(folder)
    target.write_bytes(target.read_bytes()[:100])
    marker = json.loads((folder / checkpoint.MARKER).read_text())
    marker["files"] = checkpoint._files(folder / "params")
    (folder / checkpoint.MARKER).write_text(json.dumps(marker))
    with pytest.raises(LoadError, match="cannot restore"):
        checkpoint.load_checkpoint(folder)


def test_non_finite_tensor_is_named(tmp_path):
    params = init_params(LLAMA, jax.random.PRNGKey(3))
    params["blocks"]["up"]["w"] = params["blocks"]["up"]["w"].at[1, 0, 0].set(jnp.nan)
    folder = checkpoint.save_checkpoint(LLAMA, params, tmp_path / "c")
    with pytest.raises(LoadError, match=r"tensor \['blocks'\]\['up'\]\['w'\] contains NaN or Inf"):
        checkpoint.load_checkpoint(folder)


def test_changed_source_replaces_its_old_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("RHOJAX_CACHE", str(tmp_path / "cache"))
    _hf_source(tmp_path / "hf")
    convert, calls = _counting_convert(tmp_path / "hf")
    checkpoint.cached_load(tmp_path / "hf", "float32", convert, min_bytes=0)
    old = checkpoint.cache_entry(tmp_path / "hf", "float32")
    weights = tmp_path / "hf" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    new = checkpoint.cache_entry(tmp_path / "hf", "float32")
    assert new != old
    checkpoint.cached_load(tmp_path / "hf", "float32", convert, min_bytes=0)
    assert len(calls) == 2 and new.exists() and not old.exists()
    # a source that disappears loses its entry at the next cache write
    _hf_source(tmp_path / "hf2")
    checkpoint.cached_load(tmp_path / "hf2", "float32", _counting_convert(tmp_path / "hf2")[0], min_bytes=0)
    shutil.rmtree(tmp_path / "hf")
    assert checkpoint.remove_orphans() == [new] and not new.exists()
    assert checkpoint.cache_entry(tmp_path / "hf2", "float32").exists()


def test_saving_over_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(RhojaxError, match="not a rhojax checkpoint"):
        checkpoint.save_checkpoint(LLAMA, init_params(LLAMA, jax.random.PRNGKey(0)), tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").exists()
