"""scripts/plan_results.py keeps the results its data file already holds, so seeds can be added by later runs."""

from __future__ import annotations

import json

import pytest

from tests.scripts import import_from_scripts, load_script

SETTINGS = {"target": "params=0.5", "baselines": ["uniform_wanda"], "seed": 0}


def write(path, settings, targets):
    path.write_text(json.dumps({"model": "smollm2-135m", "settings": settings, "wall_seconds": 60.0,
                                "provenance": {"command": "first", "commit": "a" * 40}, "targets": targets}))


def test_kept_data_keeps_each_result_with_the_provenance_of_its_run(tmp_path):
    plan_results = load_script("plan_results")
    data = tmp_path / "plan.json"
    later = {"command": "second", "commit": "b" * 40}
    write(data, SETTINGS, [{"target": "params=0.5", "calib_seed": 0, "plan_only": False},
                           {"target": "params=0.5", "calib_seed": 1, "plan_only": False, "provenance": later}])
    kept = plan_results.kept_data(data, "smollm2-135m", {**SETTINGS, "baselines": ("uniform_wanda",)})
    assert [r["provenance"]["command"] for r in kept["targets"]] == ["first", "second"]
    assert kept["wall_seconds"] == 60.0
    assert plan_results.kept_data(tmp_path / "new.json", "smollm2-135m", SETTINGS) == {}


def test_kept_data_counts_a_field_added_since_as_equal_and_refuses_other_settings(tmp_path):
    plan_results = load_script("plan_results")
    data = tmp_path / "plan.json"
    write(data, SETTINGS, [])
    assert plan_results.kept_data(data, "smollm2-135m", {**SETTINGS, "anchors": ()})["targets"] == []
    with pytest.raises(SystemExit, match="plan.json holds results .* other settings \\(seed\\)"):
        plan_results.kept_data(data, "smollm2-135m", {**SETTINGS, "seed": 1})
    with pytest.raises(SystemExit, match="other settings \\(model\\)"):
        plan_results.kept_data(data, "gemma3-270m", SETTINGS)


def test_the_page_names_the_earlier_runs_a_plan_file_kept():
    render = import_from_scripts("results_pages.plan")
    top = {"command": "second", "commit": "b" * 40}
    data = {"provenance": top, "targets": [
        {"target": "params=0.5", "calib_seed": 0, "provenance": {"command": "first", "commit": "a" * 40}},
        {"target": "flops=0.6", "calib_seed": 0, "provenance": {"command": "first", "commit": "a" * 40}},
        {"target": "params=0.5", "calib_seed": 1, "provenance": top}]}
    assert render.earlier_runs_note(data)[-1] == ("- params=0.5 seed 0, flops=0.6 seed 0: `first` at commit "
                                                  "`aaaaaaaaaaaa`.")
    assert render.earlier_runs_note({"provenance": top, "targets": data["targets"][2:]}) == []
