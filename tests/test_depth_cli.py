"""The prune-depth and allocate commands and the depth study, end to end on a tiny random llama saved as a
Hugging Face folder (with SmolLM2's tokenizer, so the real corpus windows are used)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.data.corpora import statistics_split
from rhojax.data.windows import corpus_windows
from rhojax.depth import remove_layers
from rhojax.depth.study import DepthSettings, run_depth_study
from rhojax.eval.perplexity import perplexity
from rhojax.io.checkpoint import load_checkpoint
from rhojax.io.resolve import load_model
from rhojax.report.depth_figures import draw_depth_figures
from rhojax.runs import RunFolder, RunFolderError
from rhojax.settings import run_identity
from tests.tiny_models import save_tiny_llama, tiny_llama_config

BUDGET = ["--calib-tokens", "128", "--tokens", "128", "--seq-len", "64", "--samples", "2", "--tasks", ""]
SMALL = dict(calib_tokens=128, tokens=128, seq_len=64, samples=2, boots=200)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny"), tiny_llama_config(num_layers=4))


def torch_perplexity(folder, windows: np.ndarray) -> float:
    """exp(mean next-token cross-entropy) of transformers' PyTorch model loaded from an HF folder."""
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokens = torch.tensor(windows, dtype=torch.long)
    with torch.no_grad():
        logits = model(tokens).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    return float(torch.exp(nll))


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    return load_model(str(tiny_folder))


def bootstrap_ratio(nll, ref, per_window, boots, seed):
    """Plain paired percentile bootstrap of ppl(nll) / ppl(ref) over windows (independent of rhojax)."""
    idx = np.random.default_rng(seed).integers(0, len(ref), size=(boots, len(ref)))
    ratios = [np.exp((np.sum(np.take(nll, i)) - np.sum(np.take(ref, i))) / (len(i) * per_window)) for i in idx]
    return np.quantile(ratios, [0.025, 0.975])


def test_prune_depth_writes_results_and_a_loadable_model(tmp_path, tiny_folder, tiny):
    out = tmp_path / "pd"
    text = tmp_path / "own.txt"
    text.write_text(" ".join(f"Sentence number {i} of a small text about rivers and hills." for i in range(200)))
    args = ["prune-depth", str(tiny_folder), "--remove", "2", "--criterion", "blend", "--lam", "0.5", "--out",
            str(out), "--save-model", "--text", str(text), *BUDGET]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "prune_depth.json").read_text())
    assert len(data["removed_layers"]) == 2 and data["remaining_layers"] == 2
    saved = load_model(str(out / "model"))
    config, params = remove_layers(tiny.config, tiny.params, data["removed_layers"])
    assert saved.config.num_layers == 2
    windows = np.asarray(json.loads("[[1, 5, 9, 13, 17, 21]]"), np.int32)
    assert perplexity(saved.config, saved.params, windows).perplexity == pytest.approx(
        perplexity(config, params, windows).perplexity, rel=1e-5)
    # --text is the evaluation text: the reported perplexities against transformers' own forward of the
    # two HF folders on the user's file (BUDGET: 128 tokens in windows of 64)
    own = corpus_windows(tiny.tokenizer, str(text), "evaluation", 128, 64)
    assert data["dense"]["perplexity"] == pytest.approx(torch_perplexity(tiny_folder, own), rel=1e-4)
    assert data["pruned"]["perplexity"] == pytest.approx(torch_perplexity(out / "model", own), rel=1e-4)
    assert data["pruned"]["scored_tokens"] == own.shape[0] * (own.shape[1] - 1)
    assert data["pruned"]["ratio"] == pytest.approx(data["pruned"]["perplexity"] / data["dense"]["perplexity"],
                                                    rel=1e-9)
    # a rerun into the same folder with another removal is refused, naming the key
    again = CliRunner().invoke(app, [a if a != "2" else "1" for a in args])
    assert again.exit_code == 2 and "remove: 2 -> 1" in again.output


def test_prune_depth_rejects_blend_without_lambda(tmp_path, tiny_folder):
    result = CliRunner().invoke(app, ["prune-depth", str(tiny_folder), "--remove", "1", "--criterion", "blend",
                                      "--out", str(tmp_path), *BUDGET])
    assert result.exit_code == 2 and "needs lam" in result.output
    result = CliRunner().invoke(app, ["prune-depth", str(tiny_folder), "--criterion", "rhoo", "--out",
                                      str(tmp_path), *BUDGET])
    assert result.exit_code == 2 and "criterion 'rhoo': choose rho, bi or blend" in result.output


def _assert_same_params(a: dict, b: dict) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_prune_depth_and_allocate_save_checkpoints_that_restore_exactly(tmp_path, tiny_folder, tiny):
    """--save-checkpoint writes an orbax checkpoint restoring bit for bit to the pruned params: the layers
    left by remove_layers (prune-depth), and the same params as the independently written HF folder with
    its zeros in place (allocate)."""
    out = tmp_path / "pd"
    result = CliRunner().invoke(app, ["prune-depth", str(tiny_folder), "--remove", "1", "--criterion", "bi", "--out",
                                      str(out), "--save-checkpoint", *BUDGET])
    assert result.exit_code == 0, result.output
    removed = json.loads((out / "prune_depth.json").read_text())["removed_layers"]
    config, params = load_checkpoint(out / "checkpoint")
    expected_config, expected = remove_layers(tiny.config, tiny.params, removed)
    assert config == expected_config and config.num_layers == tiny.config.num_layers - 1
    _assert_same_params(params, expected)
    assert not (out / "model").exists()  # HF folder only with --save-model

    out = tmp_path / "alloc"
    result = CliRunner().invoke(app, ["allocate", str(tiny_folder), "--sparsity", "0.5", "--method", "wanda",
                                      "--schedule", "uniform", "--out", str(out), "--save-checkpoint", "--save-model",
                                      *BUDGET])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "allocation.json").read_text())
    restored = load_model(str(out / "checkpoint"))  # the tokenizer travels with the checkpoint
    as_hf = load_model(str(out / "model"))
    named = lambda c: c.replace(name=tiny.config.name)  # noqa: E731 (the name comes from the folder)
    assert named(restored.config) == named(as_hf.config) == tiny.config
    _assert_same_params(restored.params, as_hf.params)
    w = np.asarray(restored.params["blocks"]["up"]["w"])
    assert np.mean(w == 0) == pytest.approx(data["realised_mean"], abs=0.02)
    assert restored.tokenizer.encode("rivers and hills") == tiny.tokenizer.encode("rivers and hills")


@pytest.mark.parametrize("schedule", ["owl_absorption", "alpha_absorption_tokenwise"])
def test_allocate_hits_the_target_sparsity(tmp_path, tiny_folder, schedule):
    out = tmp_path / "alloc"
    result = CliRunner().invoke(app, ["allocate", str(tiny_folder), "--sparsity", "0.6", "--method", "wanda",
                                      "--schedule", schedule, "--out", str(out), *BUDGET])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "allocation.json").read_text())
    assert np.mean(data["ratios"]) == pytest.approx(0.6, abs=1e-12)
    assert data["realised_mean"] == pytest.approx(0.6, abs=0.02)
    lo, hi = data["perplexity_ci"]
    assert lo <= data["perplexity"] <= hi


def small_study(**overrides) -> DepthSettings:
    kwargs = dict(**SMALL, tasks=(), ks=(1, 2), criteria=("bi",), sparsities=(0.5,), methods=("wanda",),
                  schedules=("uniform", "depth"))
    return DepthSettings(**{**kwargs, **overrides})


def test_study_rows_carry_intervals_checked_against_plain_numpy(tmp_path, tiny):
    s = small_study()
    summary = run_depth_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    assert [(r["criterion"], r["k"]) for r in summary["depth"]] == [("bi", 1), ("bi", 2)]
    assert [(r["schedule"], r["sparsity"]) for r in summary["allocation"]] == [("uniform", 0.5), ("depth", 0.5)]
    windows = corpus_windows(tiny.tokenizer, "wiki", "evaluation", 128, 64)
    dense = summary["dense"]
    assert dense["perplexity"] == pytest.approx(perplexity(tiny.config, tiny.params, windows).perplexity, rel=1e-6)
    # BI order from the dense signals (ShortGPT: smallest Block Influence first)
    assert summary["depth"][1]["removed_layers"] == [int(i) for i in np.argsort(summary["signals"]["bi"])[:2]]
    for row in summary["depth"] + summary["allocation"]:
        nll, ref = np.asarray(row["window_nll"]), np.asarray(dense["window_nll"])
        assert row["perplexity"] == pytest.approx(np.exp(nll.sum() / (nll.size * 63)), rel=1e-9)
        assert row["ratio"] == pytest.approx(row["perplexity"] / dense["perplexity"], rel=1e-9)
        np.testing.assert_allclose(row["ratio_ci"], bootstrap_ratio(nll, ref, 63, 200, 0), rtol=1e-9)
    config, params = remove_layers(tiny.config, tiny.params, summary["depth"][0]["removed_layers"])
    assert summary["depth"][0]["perplexity"] == pytest.approx(perplexity(config, params, windows).perplexity,
                                                              rel=1e-6)
    assert summary["split"]["statistics"] == statistics_split("wiki")
    paths = draw_depth_figures(tmp_path, {**summary, "model": "tiny"})
    assert {p.name for p in paths} == {"layer_scores.png", "depth_perplexity.png", "schedules_wanda_50.png"}


def test_study_resumes_without_recomputing_and_refuses_other_settings(tmp_path, tiny):
    s = small_study(criteria=("bi", "rho_ascending"), schedules=("uniform",))
    first = run_depth_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    parts = sorted((tmp_path / "parts").glob("*.json"))
    assert {p.stem for p in parts} >= {"dense", "signals_rho", "signals_bi", "order_bi", "depth_bi_k1",
                                       "depth_rho_ascending_k2", "allocation_wanda_0.5_uniform"}
    stamps = {p.name: p.stat().st_mtime_ns for p in parts}
    victim = tmp_path / "parts" / "depth_rho_ascending_k2.json"
    victim.unlink()  # as if killed while this row was in flight
    second = run_depth_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    assert second == first
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json")}
    assert {k: v for k, v in after.items() if k != victim.name} == {k: v for k, v in stamps.items()
                                                                    if k != victim.name}
    assert victim.exists()
    with pytest.raises(RunFolderError, match=r"settings\.task_ks: \[2, 4, 6, 8\] -> \[1\]"):
        RunFolder.open(tmp_path, run_identity(tiny, small_study(criteria=("bi", "rho_ascending"),
                                                                  schedules=("uniform",), task_ks=(1,))))


def test_study_scores_tasks_only_where_asked(tmp_path, tiny):
    s = small_study(tasks=("arc_easy",), task_limit=4, task_ks=(1,), methods=())
    summary = run_depth_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    rows = {r["k"]: r for r in summary["depth"]}
    assert summary["dense"]["tasks"]["arc_easy"]["items"] == 4
    assert rows[1]["tasks"]["arc_easy"]["items"] == 4 and "mean_acc" not in rows[2]
    assert summary["allocation"] == []


def test_study_measures_only_the_signal_groups_asked_for_and_those_its_schedules_need(tmp_path, tiny):
    s = small_study(ks=(1,), schedules=("owl",), signals=())
    summary = run_depth_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    assert {p.stem for p in (tmp_path / "parts").glob("signals_*.json")} == {
        "signals_rho", "signals_bi", "signals_outliers"}  # rho and bi for the figure, outliers for OWL
    assert set(summary["signals"]) == {"rho_aggregate", "rho_tokenwise", "bi", "bi_without_bos", "outlier_ratio"}


def test_settings_errors_name_the_argument():
    with pytest.raises(Exception, match="signals 'rhoo': choose one of rho, bi, outliers, alpha, absorption"):
        DepthSettings(signals=("rhoo",))
    with pytest.raises(Exception, match="criteria 'nope': choose one of bi, "):
        DepthSettings(criteria=("nope",))
    with pytest.raises(Exception, match="schedules 'owll'"):
        DepthSettings(schedules=("owll",))
