"""The zero-shot study on a tiny random model (SmolLM2's tokenizer, real task data): one part per task, a
rerun resumes without rescoring, and a rerun with other settings is refused naming the key."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.commands import eval as eval_command
from rhojax.eval.study import EvalSettings, run_eval_study
from rhojax.eval.tasks import evaluate_task
from rhojax.io.resolve import load_model
from rhojax.runs import RunFolder, RunFolderError
from rhojax.settings import run_identity
from tests.test_depth_cli import tiny_folder  # noqa: F401 - the tiny HF folder fixture


@pytest.fixture(scope="module")
def tiny(tiny_folder):  # noqa: F811
    return load_model(str(tiny_folder))


def test_one_part_per_task_resume_and_refusal(tmp_path, tiny):
    s = EvalSettings(tasks=("arc_easy", "piqa"), limit=3, batch_size=4)
    summary = run_eval_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["task_arc_easy.json", "task_piqa.json"]
    direct = evaluate_task(tiny.config, tiny.params, tiny.tokenizer, "piqa", limit=3, batch_size=4)
    assert summary["tasks"]["piqa"] == json.loads(json.dumps(direct.summary()))
    saved = json.loads((tmp_path / "parts" / "task_arc_easy.json").read_text())["value"]
    assert saved["acc"] == np.mean([p["pred"] == p["gold"] for p in saved["predictions"]])

    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "parts").iterdir()}
    (tmp_path / "parts" / "task_piqa.json").unlink()  # as if killed while piqa was scored
    again = run_eval_study(tiny, RunFolder.open(tmp_path, run_identity(tiny, s)), s)
    assert again == summary
    assert (tmp_path / "parts" / "task_arc_easy.json").stat().st_mtime_ns == stamps["task_arc_easy.json"]
    with pytest.raises(RunFolderError, match=r"settings\.limit: 3 -> 4"):
        RunFolder.open(tmp_path, run_identity(tiny, EvalSettings(tasks=("arc_easy", "piqa"), limit=4, batch_size=4)))


def test_command_refuses_a_rerun_with_other_settings(monkeypatch, tmp_path, tiny):
    monkeypatch.setattr(eval_command, "load_model", lambda spec, dtype: tiny)
    args = ["eval", "tiny", "--tasks", "arc_easy", "--limit", "2", "--batch-size", "4", "--out", str(tmp_path)]
    assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, [*args, "--prepend-bos"])
    assert result.exit_code == 2 and "prepend_bos: false -> true" in result.output.lower()
