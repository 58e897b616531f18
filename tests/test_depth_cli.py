"""The prune-depth and allocate commands and the study runner, end to end on a tiny random llama saved as
a Hugging Face folder (with SmolLM2's tokenizer, so the real corpus windows are used)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.commands.depth import DepthCriterion, Settings, run_depth_study
from rhojax.data.windows import corpus_windows
from rhojax.depth import remove_layers
from rhojax.eval.perplexity import perplexity
from rhojax.io.resolve import load_model, resolve_path
from rhojax.io.save_hf import save_hf
from rhojax.io.tokenizer import load_tokenizer
from rhojax.models import ModelConfig, init_params
from rhojax.report.jsonio import read_jsonl

BUDGET = ["--calib-tokens", "128", "--tokens", "128", "--seq-len", "64", "--samples", "2", "--tasks", ""]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    path, gguf_file = resolve_path("smollm2-135m")
    tokenizer = load_tokenizer(path.parent, gguf_file)  # the tokenizer only: no need to dequantise the model
    config = ModelConfig(
        family="llama", vocab_size=len(tokenizer.backend), hidden_size=16, num_layers=4, num_heads=2,
        num_kv_heads=1, head_dim=8, intermediate_size=32, norm_eps=1e-5, rope_theta=1e4, tie_embeddings=True,
    )
    folder = tmp_path_factory.mktemp("tiny")
    save_hf(config, init_params(config, jax.random.PRNGKey(0), scale=0.3), folder, tokenizer=tokenizer)
    return folder


def torch_perplexity(folder, windows: np.ndarray) -> float:
    """exp(mean next-token cross-entropy) of transformers' PyTorch model loaded from an HF folder."""
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokens = torch.tensor(windows, dtype=torch.long)
    with torch.no_grad():
        logits = model(tokens).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    return float(torch.exp(nll))


def test_prune_depth_writes_results_and_a_loadable_model(tmp_path, tiny_folder):
    out = tmp_path / "pd"
    result = CliRunner().invoke(app, ["prune-depth", str(tiny_folder), "--remove", "2", "--criterion", "blend",
                                      "--lambda", "0.5", "--out", str(out), "--save-model", *BUDGET])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "prune_depth.json").read_text())
    assert len(data["removed_layers"]) == 2 and data["remaining_layers"] == 2
    saved = load_model(str(out / "model"))
    original = load_model(str(tiny_folder))
    config, params = remove_layers(original.config, original.params, data["removed_layers"])
    assert saved.config.num_layers == 2
    windows = np.asarray(json.loads("[[1, 5, 9, 13, 17, 21]]"), np.int32)
    assert perplexity(saved.config, saved.params, windows).perplexity == pytest.approx(
        perplexity(config, params, windows).perplexity, rel=1e-5)
    # the reported perplexities against transformers' own forward of the two HF folders on the same
    # evaluation windows (BUDGET: 128 tokens in windows of 64)
    evaluation = corpus_windows(original.tokenizer, "wiki", "evaluation", 128, 64)
    assert data["dense"]["perplexity"] == pytest.approx(torch_perplexity(tiny_folder, evaluation), rel=1e-4)
    assert data["pruned"]["perplexity"] == pytest.approx(torch_perplexity(out / "model", evaluation), rel=1e-4)
    assert data["pruned"]["scored_tokens"] == evaluation.shape[0] * (evaluation.shape[1] - 1)


def test_prune_depth_rejects_blend_without_lambda(tmp_path, tiny_folder):
    result = CliRunner().invoke(app, ["prune-depth", str(tiny_folder), "--remove", "1", "--criterion", "blend",
                                      "--out", str(tmp_path), *BUDGET])
    assert result.exit_code == 2 and "--lambda" in result.output


@pytest.mark.parametrize("schedule", ["owl_absorption", "alpha_absorption_tokenwise"])
def test_allocate_hits_the_target_sparsity(tmp_path, tiny_folder, schedule):
    out = tmp_path / "alloc"
    result = CliRunner().invoke(app, ["allocate", str(tiny_folder), "--sparsity", "0.6", "--method", "wanda",
                                      "--schedule", schedule, "--out", str(out), *BUDGET])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "allocation.json").read_text())
    assert np.mean(data["ratios"]) == pytest.approx(0.6, abs=1e-12)
    assert data["realised_mean"] == pytest.approx(0.6, abs=0.02)


def test_study_resumes_without_redoing_lines(tmp_path, tiny_folder):
    model = load_model(str(tiny_folder))
    settings = Settings(calib_tokens=128, eval_tokens=128, seq_len=64, samples=2, tasks="")
    kwargs = dict(settings=settings, ks=(1, 2), criteria=(DepthCriterion("bi", 0.0),), sparsities=(0.5,),
                  methods=("wanda",), schedules=("uniform", "depth"))
    run_depth_study(model, tmp_path, **kwargs)
    first = read_jsonl(tmp_path / "depth.jsonl") + read_jsonl(tmp_path / "allocation.jsonl")
    run_depth_study(model, tmp_path, **kwargs)
    assert read_jsonl(tmp_path / "depth.jsonl") + read_jsonl(tmp_path / "allocation.jsonl") == first
    assert len(first) == 3 + 2
    assert (tmp_path / "depth_perplexity.png").exists() and (tmp_path / "layer_scores.png").exists()


def test_study_adds_tasks_to_rows_run_without_them(tmp_path, tiny_folder):
    model = load_model(str(tiny_folder))
    settings = Settings(calib_tokens=128, eval_tokens=128, seq_len=64, samples=2, tasks="arc_easy", task_limit=4)
    kwargs = dict(settings=settings, ks=(1, 2), criteria=(DepthCriterion("bi", 0.0),), methods=())
    run_depth_study(model, tmp_path, task_ks=(), **kwargs)
    before = {r["k"]: r for r in read_jsonl(tmp_path / "depth.jsonl")}
    assert "mean_acc" in before[0] and "mean_acc" not in before[1]
    run_depth_study(model, tmp_path, task_ks=(1,), **kwargs)
    after = {r["k"]: r for r in read_jsonl(tmp_path / "depth.jsonl")}
    assert len(read_jsonl(tmp_path / "depth.jsonl")) == 3  # rewritten in place, not appended
    assert after[1]["tasks"]["arc_easy"]["items"] == 4 and "mean_acc" not in after[2]
    assert after[1]["removed_layers"] == before[1]["removed_layers"]
    assert after[1]["perplexity"] == pytest.approx(before[1]["perplexity"], rel=1e-6)
