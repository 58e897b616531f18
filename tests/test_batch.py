"""The batch script: its config format (every mistake a one-line error naming the key) and a run on two tiny
random models saved as Hugging Face folders, resumed after an interruption, with the comparison table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rhojax.analysis.budgets import BUDGETS
from rhojax.batch import BatchConfigError, parse_config, read_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import batch as batch_script  # noqa: E402  (scripts/batch.py)

MODELS = [{"spec": "smollm2-135m"}]


def test_a_minimal_config_takes_the_defaults():
    config = parse_config({"models": MODELS}, base=Path("/base"))
    assert config.out == Path("/base/results") and config.devices == 0 and config.model_parallel == 1
    (model,) = config.models
    assert model.name == "smollm2-135m" and model.budget == "quick" and model.dtype == "float32"
    assert model.settings == BUDGETS["quick"]
    assert config.studies[0] == "perplexity" and config.studies[-1] == "plan" and len(config.studies) == 8


def test_overrides_studies_and_per_model_entries(tmp_path):
    (tmp_path / "my model").mkdir()
    data = {
        "out": "runs", "budget": "smoke", "studies": ["sensitivity", "perplexity", "bounds"], "text": "news",
        "settings": {"profile": {"samples": 3, "sweep_eps": [0.1, 1]}, "sensitivity": {"layers": [0, 2]}},
        "models": [{"spec": "my model", "budget": "quick", "dtype": "bfloat16",
                    "settings": {"profile": {"samples": 5}}}, {"spec": "x/y.gguf"}],
    }
    config = parse_config(data, base=tmp_path)
    assert config.out == tmp_path / "runs"
    assert config.studies == ("perplexity", "sensitivity", "bounds")  # job order
    first, second = config.models
    assert first.spec == str((tmp_path / "my model").resolve()) and first.name == "my-model"
    assert first.budget == "quick" and first.dtype == "bfloat16"
    assert first.settings.profile.samples == 5  # the model's own override wins
    assert first.settings.profile.sweep_eps == (0.1, 1.0) and isinstance(first.settings.profile.sweep_eps[1], float)
    assert first.settings.profile.tokens == BUDGETS["quick"].profile.tokens
    assert first.settings.sensitivity.layers == (0, 2) and first.settings.perplexity.text == "news"
    assert second.spec == "x/y.gguf" and second.name == "y" and second.settings.profile.samples == 3
    assert second.settings.profile.tokens == BUDGETS["smoke"].profile.tokens


@pytest.mark.parametrize(("data", "message"), [
    ({"models": MODELS, "budgt": "quick"}, "cfg: budgt: unknown key (allowed: out, budget,"),
    ({"models": MODELS, "budget": "huge"}, "cfg: budget: 'huge' is not one of smoke, quick, standard, paper"),
    ({"models": MODELS, "devices": "all"}, "cfg: devices: expected an integer, got 'all'"),
    ({"models": MODELS, "devices": True}, "cfg: devices: expected an integer, got True"),
    ({"models": []}, "cfg: models: list at least one model"),
    ({}, "cfg: models: list at least one model"),
    ({"models": MODELS, "studies": ["profle"]}, "cfg: studies: study 'profle': choose from perplexity, profile,"),
    ({"models": MODELS, "studies": ["bounds"]}, "cfg: studies: study 'bounds' reads the results of sensitivity"),
    ({"models": MODELS, "studies": []}, "cfg: studies: list at least one of"),
    ({"models": [{"name": "a"}]}, "cfg: models[0].spec: missing"),
    ({"models": [{"spec": "a", "sepc": "b"}]}, "cfg: models[0].sepc: unknown key (allowed: spec, name,"),
    ({"models": [{"spec": "a"}, {"spec": "a"}]}, "cfg: models[1].name: 'a' is used twice"),
    ({"models": [{"spec": "a", "dtype": "float16"}]}, "cfg: models[0].dtype: 'float16' is not one of float32"),
    ({"models": MODELS, "settings": {"profil": {}}}, "cfg: settings.profil: unknown study (choose from"),
    ({"models": MODELS, "settings": {"profile": {"sampels": 2}}},
     "cfg: settings.profile.sampels: unknown setting of profile (choose from stream, memory_budget, text,"),
    ({"models": MODELS, "settings": {"profile": {"samples": 2.5}}},
     "cfg: settings.profile.samples: expected an integer, got 2.5"),
    ({"models": MODELS, "settings": {"profile": {"sweep_eps": 0.1}}},
     "cfg: settings.profile.sweep_eps: expected a list of float, got 0.1"),
    ({"models": MODELS, "settings": {"profile": {"sweep_eps": ["a"]}}},
     "cfg: settings.profile.sweep_eps: expected a number, got 'a'"),
    ({"models": [{"spec": "a", "settings": {"depth": {"ks": [1.5]}}}]},
     "cfg: models[0].settings.depth.ks: expected an integer, got 1.5"),
])
def test_every_mistake_is_a_one_line_error_naming_the_key(data, message):
    with pytest.raises(BatchConfigError) as e:
        parse_config(data, source="cfg")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(BatchConfigError, match="missing.toml: cannot read the config"):
        read_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [\n")
    with pytest.raises(BatchConfigError, match="bad.toml: not valid TOML"):
        read_config(bad)


def test_the_script_prints_a_config_error_on_one_line(tmp_path, capsys):
    config = tmp_path / "batch.toml"
    config.write_text('budget = "quick"\n[[models]]\nspec = "smollm2-135m"\nflavour = "x"\n')
    assert batch_script.main([str(config), "--check"]) == 2
    err = capsys.readouterr().err
    assert "models[0].flavour: unknown key" in err and "Traceback" not in err


TINY_CONFIG = """
out = "results"
budget = "smoke"
studies = ["perplexity", "profile", "sensitivity"]
devices = 1

[settings.perplexity]
tokens = 256
seq_len = 64

[settings.profile]
tokens = 128
seq_len = 64
samples = 2
sweep_eps = [0.1]
sweep_samples = 2
drift_tokens = 64
drift_samples = 2
absorption_eps = [1.0]
jacobian_tokens = 64
jacobian_iterations = 3
boots = 50

[settings.sensitivity]
methods = ["magnitude"]
tokens = 128
seq_len = 64
layers = [1]
yardstick = false

[[models]]
spec = "a/model"
name = "first"

[[models]]
spec = "b/model"
name = "second"

[[models]]
spec = "absent-folder"
"""


@pytest.fixture(scope="module")
def tiny_batch(tmp_path_factory) -> Path:
    """Two 2-layer random llamas (SmolLM2's tokenizer) as Hugging Face folders next to a batch config.

    Both folders are named ``model``: the folder name is the config's name, so the two share compiled code."""
    from tests.tiny_models import save_tiny_llama, tiny_llama_config

    config = tiny_llama_config(num_layers=2)
    root = tmp_path_factory.mktemp("batch")
    for seed, name in enumerate(("a", "b")):
        save_tiny_llama(root / name / "model", config, seed=seed)
    (root / "batch.toml").write_text(TINY_CONFIG)
    return root


def _rows(path: Path) -> list[dict]:
    rows = json.loads(path.read_text())["models"]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_the_batch_runs_every_model_resumes_and_compares(tiny_batch):
    out = tiny_batch / "results"
    assert batch_script.main([str(tiny_batch / "batch.toml")]) == 1  # one model could not be loaded
    comparison = json.loads((out / "comparison.json").read_text())
    assert [r["model"] for r in comparison["models"]] == ["first", "second"]
    assert list(comparison["failed"]) == ["absent-folder"] and "\n" not in comparison["failed"]["absent-folder"]
    for row, name in zip(comparison["models"], ("first", "second"), strict=True):
        report = json.loads((out / name / "report.json").read_text())
        assert set(report) >= {"perplexity", "profile", "sensitivity"} and "depth" not in report
        assert row["perplexity"] == report["perplexity"]["perplexity"] and row["layers"] == 2
        assert row["rho_max"] == max(report["profile"]["rho"])
        assert row["spread"] == report["sensitivity"]["maps"]["magnitude@0.5"]["spread"]
    assert comparison["models"][0]["perplexity"] != comparison["models"][1]["perplexity"]  # two different models
    table = (out / "comparison.md").read_text().splitlines()
    assert table[0].startswith("| model | layers | parameters | perplexity | mean rho |")
    assert table[2].startswith("| first | 2 |") and table[3].startswith("| second | 2 |")
    assert "- absent-folder: " in table[-1]

    # an interruption: the second model's profile stopped mid-way, the comparison was never written
    first_parts = {p: p.stat().st_mtime_ns for p in (out / "first").rglob("parts/*.json")}
    (out / "second" / "profile" / "parts" / "compressed_drift.json").unlink()
    (out / "second" / "profile" / "parts" / "summary.json").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (out / "second").rglob("parts/*.json")}
    before = _rows(out / "comparison.json")
    (out / "comparison.json").unlink()
    assert batch_script.main([str(tiny_batch / "batch.toml")]) == 1
    assert {p: p.stat().st_mtime_ns for p in first_parts} == first_parts  # nothing recomputed
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert (out / "second" / "profile" / "parts" / "compressed_drift.json").exists()
    assert _rows(out / "comparison.json") == before
