"""Healing after compression: masks and grids kept, what trains, resumption, bad input."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.compress import magnitude_prune, rtn_quantize
from rhojax.compress.model import compress_sites
from rhojax.errors import RhojaxError
from rhojax.heal import HealSettings, calibration_loss, check_compressed, heal, merge
from rhojax.models import ModelConfig, init_params

CONFIG = ModelConfig("llama", 37, 16, 2, 4, 2, 4, 32, 1e-6, max_position_embeddings=32, qkv_bias=True)
WINDOWS = np.random.default_rng(0).integers(0, CONFIG.vocab_size, size=(8, 12)).astype(np.int32)
FAST = HealSettings(steps=12, learning_rate=3e-2, warmup_steps=2, batch_size=4, rank=2, save_every=4)


@functools.cache
def _pruned(sparsity=0.5):
    params = init_params(CONFIG, jax.random.PRNGKey(0), scale=0.3)
    return compress_sites(params, lambda w, t, k: magnitude_prune(w, sparsity), CONFIG.site_kinds)


def _mean_loss(params):
    return float(calibration_loss(CONFIG, params, jnp.asarray(WINDOWS)))


def test_lora_healing_keeps_pruned_weights_exactly_zero_and_lowers_the_loss():
    params = _pruned()
    result = heal(CONFIG, params, WINDOWS, FAST)
    for kind in CONFIG.site_kinds:
        before, after = np.asarray(params["blocks"][kind]["w"]), np.asarray(result.params["blocks"][kind]["w"])
        assert np.all(after[before == 0] == 0)
        assert np.mean(before == 0) == pytest.approx(0.5, abs=0.01)
        assert np.any(after[before != 0] != before[before != 0])  # the kept weights did train
    assert _mean_loss(result.params) < _mean_loss(params)
    assert len(result.losses) == FAST.steps


def test_merge_formula_against_numpy():
    params = _pruned()
    settings = dataclasses.replace(FAST, kinds=("up",))
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 16, 2)).astype(np.float32)
    b = rng.normal(size=(2, 2, 32)).astype(np.float32)
    merged = merge(CONFIG, params, {"up": {"a": jnp.asarray(a), "b": jnp.asarray(b)}}, settings)
    w = np.asarray(params["blocks"]["up"]["w"])
    expected = w + (w != 0) * np.stack([a[i] @ b[i] for i in range(2)])
    np.testing.assert_allclose(np.asarray(merged["blocks"]["up"]["w"]), expected, rtol=1e-5, atol=1e-6)
    assert merged["blocks"]["q"]["w"] is params["blocks"]["q"]["w"]


def test_norms_mode_trains_only_norms_and_biases():
    params = _pruned()
    result = heal(CONFIG, params, WINDOWS, dataclasses.replace(FAST, mode="norms"))
    flat_before = dict(jax.tree_util.tree_leaves_with_path(params))
    changed = set()
    for path, after in jax.tree_util.tree_leaves_with_path(result.params):
        if not np.array_equal(np.asarray(after), np.asarray(flat_before[path])):
            changed.add(path[-1].key)
    assert changed == {"scale", "b"}  # norm scales and the q/k/v biases; no weight moved
    assert _mean_loss(result.params) < _mean_loss(params)


def test_quantized_weights_stay_on_their_grid():
    params = init_params(CONFIG, jax.random.PRNGKey(2), scale=0.3)
    quantized = compress_sites(params, lambda w, t, k: rtn_quantize(w, 4, group_size=8), CONFIG.site_kinds)
    settings = dataclasses.replace(FAST, quant_bits=4, group_size=8, kinds=("down", "o"))
    healed = heal(CONFIG, quantized, WINDOWS, settings).params
    for kind in ("down", "o"):
        w, new = np.asarray(quantized["blocks"][kind]["w"]), np.asarray(healed["blocks"][kind]["w"])
        step = np.abs(w.reshape(2, -1, 8, w.shape[-1])).max(axis=2, keepdims=True) / 7  # numpy RTN step
        steps = np.abs(new.reshape(step.shape[0], -1, 8, w.shape[-1])) / step
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # integer multiples of the step
        assert np.all(np.round(steps) <= 7) and np.any(new != w)


def test_resumed_healing_reaches_the_uninterrupted_result(tmp_path):
    params = _pruned()
    whole = heal(CONFIG, params, WINDOWS, FAST, state_dir=tmp_path / "a")

    class StopError(Exception):
        pass

    def interrupt(step, loss):
        if step == 6:
            raise StopError

    with pytest.raises(StopError):
        heal(CONFIG, params, WINDOWS, FAST, state_dir=tmp_path / "b", on_step=interrupt)
    resumed = heal(CONFIG, params, WINDOWS, FAST, state_dir=tmp_path / "b")
    assert resumed.start_step == 4 and len(resumed.losses) == FAST.steps - 4
    np.testing.assert_allclose(resumed.losses, whole.losses[4:], rtol=1e-5)
    for x, y in zip(jax.tree.leaves(whole.trainable), jax.tree.leaves(resumed.trainable), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)


def test_bad_input_gets_one_line_errors():
    dense = init_params(CONFIG, jax.random.PRNGKey(3))
    with pytest.raises(RhojaxError, match="not compressed"):
        check_compressed(CONFIG, dense)
    assert check_compressed(CONFIG, dense, dense_layers=3)["layers_removed"] == 1
    assert check_compressed(CONFIG, _pruned())["zero_fraction"] == pytest.approx(0.5, abs=0.01)
    for settings, message in ((dataclasses.replace(FAST, kinds=("q", "ffn")), "'ffn'"),
                              (dataclasses.replace(FAST, rank=0), "rank 0"),
                              (dataclasses.replace(FAST, mode="all"), "mode 'all'")):
        with pytest.raises(RhojaxError, match=message) as err:
            heal(CONFIG, _pruned(), WINDOWS, settings)
        assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """A tiny random llama with SmolLM2's tokenizer, dense and 50% magnitude-pruned, as HF folders."""
    from tests.tiny_models import save_tiny_llama, smollm2_tokenizer

    config = dataclasses.replace(CONFIG, vocab_size=len(smollm2_tokenizer().backend), qkv_bias=False,
                                 tie_embeddings=True)
    dense = init_params(config, jax.random.PRNGKey(5), scale=0.3)
    pruned = compress_sites(dense, lambda w, t, k: magnitude_prune(w, 0.5), config.site_kinds)
    root = tmp_path_factory.mktemp("heal")
    save_tiny_llama(root / "dense", config, params=dense)
    save_tiny_llama(root / "pruned", config, params=pruned)
    return root


CLI_BUDGET = ["--steps", "3", "--warmup", "1", "--rank", "2", "--calib-tokens", "512", "--tokens", "128",
              "--seq-len", "64", "--tasks", ""]


def test_heal_command_writes_results_and_a_loadable_healed_model(tiny_folders, tmp_path):
    import json

    from typer.testing import CliRunner

    from rhojax.cli import app
    from rhojax.io.resolve import load_model

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["heal", str(tiny_folders / "pruned"), "--out", str(out), "--dense",
                                      str(tiny_folders / "dense"), "--lr", "1e-2", "--save-hf", *CLI_BUDGET])
    assert result.exit_code == 0, result.output
    assert "training loss" in result.output
    record = json.loads((out / "heal.json").read_text())
    assert len(record["losses"]) == 3 and record["compression"]["zero_fraction"] == pytest.approx(0.5, abs=0.01)
    gap = record["before"]["perplexity"] - record["dense"]["perplexity"]
    assert record["gap_recovered"] == pytest.approx(
        (record["before"]["perplexity"] - record["after"]["perplexity"]) / gap)
    healed, pruned = load_model(str(out / "model")), load_model(str(tiny_folders / "pruned"))
    for kind in healed.config.site_kinds:
        before = np.asarray(pruned.params["blocks"][kind]["w"])
        assert np.all(np.asarray(healed.params["blocks"][kind]["w"])[before == 0] == 0)
    assert healed.tokenizer.encode("hello") == pruned.tokenizer.encode("hello")
    as_hf = load_model(str(out / "model_hf"))
    for a, b in zip(jax.tree.leaves(as_hf.params), jax.tree.leaves(healed.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(("model", "extra", "message"), [
    ("dense", [], "not compressed"),
    ("pruned", ["--kinds", "q,ffn"], "'ffn'"),
    ("pruned", ["--rank", "0"], "rank 0"),
])
def test_heal_command_bad_input_is_one_line(tiny_folders, tmp_path, model, extra, message):
    from typer.testing import CliRunner

    from rhojax.cli import app

    result = CliRunner().invoke(app, ["heal", str(tiny_folders / model), "--out", str(tmp_path / "x"),
                                      *CLI_BUDGET, *extra])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
