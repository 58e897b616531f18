"""``rhojax profile`` end to end on a 3-layer cut of the real SmolLM2: files, determinism, CLI."""

from __future__ import annotations

import dataclasses

import jax
import pytest
from typer.testing import CliRunner

from rhojax.propagation.study import ProfileSettings, run_profile_study
from rhojax.report.jsonio import write_json
from rhojax.report.propagation_figures import FIGURES, draw_profile_figures
from rhojax.runs import RunFolder
from rhojax.settings import run_identity

TINY = ProfileSettings(tokens=128, seq_len=64, samples=2, sweep_eps=(1e-1,), sweep_samples=2, drift_tokens=64,
            drift_samples=2, absorption_eps=(1.0,), jacobian_tokens=64, jacobian_iterations=3, boots=50)


def run_profile(model, out, seed, figures=True):
    settings = dataclasses.replace(TINY, seed=seed)
    summary = run_profile_study(model, RunFolder.open(out, run_identity(model, settings)), settings)
    write_json(out / "profile.json", summary)
    if figures:
        draw_profile_figures(out, {"model": model.spec, **summary})
    return summary


@pytest.fixture(scope="module")
def smol3(smollm2):
    """SmolLM2 cut to its first three blocks (same embedding, final norm and tokenizer)."""
    blocks = jax.tree.map(lambda a: a[:3], smollm2.params["blocks"])
    return dataclasses.replace(smollm2, config=smollm2.config.replace(num_layers=3),
                               params={**smollm2.params, "blocks": blocks})


def test_same_seed_gives_same_json_resumes_and_draws_all_figures(smol3, tmp_path):
    from rhojax.errors import RhojaxError

    first = run_profile(smol3, tmp_path / "a", seed=3)
    run_profile(smol3, tmp_path / "b", seed=3, figures=False)
    text_a = (tmp_path / "a" / "profile.json").read_text()
    assert text_a == (tmp_path / "b" / "profile.json").read_text()
    for name in FIGURES:
        assert (tmp_path / "a" / f"{name}.png").stat().st_size > 1000
    assert first["settings"]["seed"] == 3 and first["settings"]["tokens"] == 128
    assert len(first["profile"]["rho_samples"]) == 3 and len(first["profile"]["rho_samples"][0]) == 2
    # a rerun resumes from parts/ (nothing recomputed) and reproduces the file
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a" / "parts").iterdir()}
    run_profile(smol3, tmp_path / "a", seed=3, figures=False)
    assert (tmp_path / "a" / "profile.json").read_text() == text_a
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a" / "parts").iterdir()} == stamps
    with pytest.raises(RhojaxError, match="settings.seed: 3 -> 4"):
        run_profile(smol3, tmp_path / "a", seed=4)


def test_cli_reports_bad_model_on_one_line(tmp_path):
    from rhojax.cli import app

    result = CliRunner().invoke(app, ["profile", str(tmp_path / "missing.gguf"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "error" in result.output.lower() or "error" in (result.stderr or "").lower()
