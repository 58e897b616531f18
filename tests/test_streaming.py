"""Layer streaming: block-by-block loaders, and streamed analyses equal to the whole-model ones.

Each streamed analysis is checked against the in-memory implementation it replaces (the model resident,
``lax.scan``/``lax.map`` over the stacked blocks): the same statistics to float32 rounding. The loaders
are checked against the whole-file loaders tensor by tensor.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.compress import calibration_stats
from rhojax.compress.calibration import block_statistics
from rhojax.errors import LoadError, RhojaxError
from rhojax.eval.perplexity import streamed_window_nll_sums, window_nll_sums
from rhojax.io.hf import load_hf_folder
from rhojax.io.resolve import Model, load_model
from rhojax.io.save_hf import save_hf
from rhojax.io.stream import BlockStream, needs_streaming, open_blocks, open_model, parse_memory, stream_model
from rhojax.models import ModelConfig, block_params, forward, init_params
from rhojax.models.params import model_bytes
from rhojax.propagation.jacobian import jacobian_gain
from rhojax.propagation.profile import rho_profile
from rhojax.propagation.streamed import GainRequest, ProfileRequest, streamed_profiles
from rhojax.sensitivity.grid import sweep_grid
from rhojax.sensitivity.streamed import run_streamed_sweep, streamed_uniform_ratio
from rhojax.sensitivity.sweep import run_sweep
from rhojax.sensitivity.uniform import uniform_ratio
from rhojax.settings import run_identity

LLAMA = ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=2,
                    head_dim=8, intermediate_size=48, norm_eps=1e-5)
GEMMA3 = ModelConfig(family="gemma3", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=1,
                     head_dim=8, intermediate_size=48, norm_eps=1e-6, qk_norm=True, sliding_window=5,
                     rope_local_theta=100.0, sliding_window_pattern=2, query_pre_attn_scalar=16.0)
GPT2 = ModelConfig(family="gpt2", vocab_size=64, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=4,
                   head_dim=8, intermediate_size=64, norm_eps=1e-5, max_position_embeddings=64)
RTOL = 1e-5


def _model(config: ModelConfig, seed: int = 0) -> Model:
    params = init_params(config, jax.random.key(seed), scale=0.2)
    return Model("tiny", config, params, "float32", None, None)


def _windows(config: ModelConfig, n: int = 5, t: int = 12, seed: int = 1) -> np.ndarray:
    return np.asarray(jax.random.randint(jax.random.key(seed), (n, t), 0, config.vocab_size), np.int32)


class CountingStream:
    """A stream that records which blocks were loaded (to check one pass loads each block once)."""

    def __init__(self, stream: BlockStream):
        self.inner, self.loaded = stream, []
        self.config, self.top = stream.config, stream.top

    def block(self, t: int) -> dict:
        self.loaded.append(t)
        return self.inner.block(t)


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=1e-7)


def test_streamed_profile_and_gain_equal_the_whole_model_ones():
    model, windows, key = _model(LLAMA), _windows(LLAMA, n=3), jax.random.key(3)
    _, hidden = forward(LLAMA, model.params, jnp.asarray(windows), return_hidden=True)
    whole = rho_profile(LLAMA, model.params, hidden, key, eps=0.02, samples=3)
    gain = jacobian_gain(LLAMA, model.params, hidden[:, :2], jax.random.key(4), iterations=4)

    stream = CountingStream(stream_model(model))
    (streamed,), s_gain = streamed_profiles(stream, windows, key, [ProfileRequest(0.02, 3, True)],
                                            gain=GainRequest(2, jax.random.key(4), 4))
    assert stream.loaded == list(range(LLAMA.num_layers))  # one pass, each block once
    for field in ("alpha", "beta", "rho", "beta_linear", "token_alpha", "token_rho_mean", "token_rho_median",
                  "sink_rho", "token_rho"):
        _close(getattr(streamed, field), getattr(whole, field))
    _close(s_gain.rho_max, gain.rho_max)


@pytest.mark.parametrize("config", [LLAMA, GEMMA3, GPT2], ids=["llama", "gemma3", "gpt2"])
def test_streamed_perplexity_equals_the_whole_model_one(config):
    model, windows = _model(config), _windows(config, n=5)
    _close(streamed_window_nll_sums(stream_model(model), windows, batch_size=2),
           window_nll_sums(config, model.params, windows, batch_size=2))


def test_streamed_calibration_equals_the_whole_model_one():
    model, windows = _model(LLAMA), _windows(LLAMA, n=3)
    whole = calibration_stats(LLAMA, model.params, windows, hessians=True, batch_size=2)
    streamed = block_statistics(stream_model(model), windows, hessians=True, batch_size=2)
    assert streamed.tokens == whole.tokens
    for group in whole.sq_norms:
        _close(streamed.sq_norms[group], whole.sq_norms[group])
        scale = np.abs(whole.hessians[group]).max()
        np.testing.assert_allclose(streamed.hessians[group], whole.hessians[group], rtol=RTOL, atol=RTOL * scale)


def test_streamed_sweep_equals_the_whole_model_sweep_and_resumes(tmp_path):
    model, windows = _model(LLAMA), _windows(LLAMA, n=3)
    calib = calibration_stats(LLAMA, model.params, _windows(LLAMA, n=2, seed=7))
    grid = sweep_grid(LLAMA, {"magnitude": (0.5,), "wanda": (0.7,)}, layers=(0, 2, 3), kinds=("q", "down"))
    whole, ref = run_sweep(LLAMA, model.params, windows, grid, tmp_path / "whole.jsonl", calibration=calib,
                           window_batch=2)
    path = tmp_path / "streamed.jsonl"
    streamed, s_ref = run_streamed_sweep(stream_model(model), windows, grid[:5], path, calibration=calib,
                                         window_batch=2, max_states=3)
    streamed, s_ref = run_streamed_sweep(stream_model(model), windows, grid, path, calibration=calib,
                                         window_batch=2, max_states=5)  # resumes after the first five
    assert len(path.read_text().splitlines()) == len(grid)
    _close(s_ref.nll, ref.nll)
    for a, b in zip(streamed, whole, strict=True):
        assert (a["layer"], a["kind"], a["method"], a["level"]) == (b["layer"], b["kind"], b["method"], b["level"])
        for field in ("ppl", "ppl_ratio", "weight_error", "zero_fraction", "window_nll", "drift",
                      "drift_token_mean", "drift_token_median", "drift_bos"):
            _close(a[field], b[field], rtol=1e-4)
    assert len({r["ppl"] for r in whole}) > 1  # the sites differ, so a mix-up of states would show

    expected = uniform_ratio(LLAMA, model.params, windows, "wanda", 0.5, calibration=calib, batch_size=2)
    _close(streamed_uniform_ratio(stream_model(model), windows, "wanda", 0.5, calibration=calib, batch_size=2),
           expected)


def test_open_blocks_of_a_hugging_face_folder_reads_the_whole_load_block_by_block(tmp_path):
    config = LLAMA.replace(qkv_bias=True)
    params = init_params(config, jax.random.key(0), scale=0.2)
    save_hf(config, params, tmp_path / "m")
    _, whole = load_hf_folder(tmp_path / "m")
    stream = open_blocks(str(tmp_path / "m"))
    assert stream.config == config.replace(name="m")
    for name in ("embed", "final_norm"):
        assert jax.tree.all(jax.tree.map(np.array_equal, stream.top[name], whole[name]))
    for t in range(config.num_layers):
        assert jax.tree.all(jax.tree.map(np.array_equal, stream.block(t), block_params(whole, t)))
    with pytest.raises(RhojaxError, match="layers 0..3"):
        stream.block(config.num_layers)


def test_open_blocks_of_a_gguf_file_dequantises_block_by_block(tmp_path, monkeypatch):
    import gguf

    from rhojax.io import gguf_file
    from tests.gguf_writer import write_gguf
    from tests.hf_reference import build_reference

    path = write_gguf(build_reference("llama_gqa_untied", tmp_path), "llama", tmp_path / "m.gguf",
                      qtype=gguf.GGMLQuantizationType.Q8_0)
    whole = load_model(str(path), cache=False)
    monkeypatch.setattr(gguf_file, "CHUNK_ROWS", 5)  # every matrix dequantised in several chunks
    stream = open_blocks(str(path))
    assert stream.config == whole.config and stream.gguf_file == "m.gguf"
    assert jax.tree.all(jax.tree.map(np.array_equal, stream.top, {k: v for k, v in whole.params.items()
                                                                    if k != "blocks"}))
    for t in range(whole.config.num_layers):
        assert jax.tree.all(jax.tree.map(np.array_equal, stream.block(t), block_params(whole.params, t)))


def test_memory_budget_decides_streaming(tmp_path):
    assert parse_memory("6GB") == 6 * 2**30 and parse_memory("512m") == 512 * 2**20
    assert parse_memory("1.5") == int(1.5 * 2**30)
    with pytest.raises(RhojaxError, match="memory_budget"):
        parse_memory("lots")
    size = model_bytes(LLAMA)
    assert size == 4 * sum(np.size(a) for a in jax.tree.leaves(init_params(LLAMA, jax.random.key(0))))
    assert needs_streaming(LLAMA, "float32", "") is False
    assert needs_streaming(LLAMA, "float32", "1kb") is True
    assert needs_streaming(LLAMA, "float32", "1gb") is False
    save_hf(LLAMA, init_params(LLAMA, jax.random.key(0)), tmp_path / "m")
    assert isinstance(open_model(str(tmp_path / "m"), memory_budget="1kb"), BlockStream)
    assert isinstance(open_model(str(tmp_path / "m"), memory_budget="1gb"), Model)
    assert isinstance(open_model(str(tmp_path / "m"), stream=True), BlockStream)


def test_streaming_is_not_part_of_a_run_identity():
    from rhojax.eval.perplexity_study import PerplexitySettings

    model = _model(LLAMA)
    assert run_identity(model, PerplexitySettings(stream=True, memory_budget="2GB")) == run_identity(
        model, PerplexitySettings())


def test_streaming_refuses_a_rhojax_checkpoint(tmp_path):
    from rhojax.io.checkpoint import save_checkpoint

    save_checkpoint(LLAMA, init_params(LLAMA, jax.random.key(0)), tmp_path / "ckpt")
    with pytest.raises(LoadError, match="streaming reads a .gguf file or a Hugging Face folder"):
        open_blocks(str(tmp_path / "ckpt"))


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> str:
    """A 3-layer random llama with SmolLM2's tokenizer, saved as a Hugging Face folder."""
    from tests.tiny_models import save_tiny_llama, tiny_llama_config

    config = tiny_llama_config(num_layers=3, hidden_size=32, num_heads=4, num_kv_heads=2, intermediate_size=48)
    return str(save_tiny_llama(tmp_path_factory.mktemp("small") / "model", config))


def test_cli_stream_flags_give_the_whole_model_results(small_folder, tmp_path):
    runner = CliRunner()
    common = ["--tokens", "128", "--seq-len", "64"]
    for name, args in (("whole", []), ("streamed", ["--stream"])):
        result = runner.invoke(app, ["ppl", small_folder, *common, "--out", str(tmp_path / name), *args])
        assert result.exit_code == 0, result.output
    whole, streamed = (json.loads((tmp_path / name / "ppl.json").read_text()) for name in ("whole", "streamed"))
    _close(streamed["window_nll"], whole["window_nll"])
    assert streamed["settings"]["stream"] is True and whole["settings"]["stream"] is False

    profile = ["--samples", "2", "--sweep-eps", "0.1", "--sweep-samples", "2", "--jacobian-iterations", "2", *common]
    result = runner.invoke(app, ["profile", small_folder, *profile, "--out", str(tmp_path / "prof"), "--stream"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "prof" / "profile.json").read_text())
    assert "drift" not in summary and "absorption" in summary["streamed"]["omitted"]
    assert len(summary["profile"]["rho"]) == 3 and len(summary["sweep"]) == 1
    assert sorted(p.name for p in (tmp_path / "prof").glob("*.png")) == ["rho_alpha_beta.png", "rho_sweep.png"]


@pytest.mark.slow
def test_streamed_smollm2_equals_the_whole_model(smollm2, smollm2_windows):
    """The packaged GGUF streamed (Q4_1 blocks dequantised on demand) gives the resident model's numbers."""
    windows = smollm2_windows("evaluation", 2, 64)
    stream = open_blocks("smollm2-135m")
    _close(streamed_window_nll_sums(stream, windows, batch_size=2),
           window_nll_sums(smollm2.config, smollm2.params, windows, batch_size=2))
    _, hidden = forward(smollm2.config, smollm2.params, jnp.asarray(windows), return_hidden=True)
    key = jax.random.key(0)
    whole = rho_profile(smollm2.config, smollm2.params, hidden, key, eps=0.01, samples=2, linearised=False)
    (streamed,), _ = streamed_profiles(stream, windows, key, [ProfileRequest(0.01, 2, False)])
    _close(streamed.rho, whole.rho, rtol=1e-4)
    _close(streamed.token_rho_mean, whole.token_rho_mean, rtol=1e-4)
