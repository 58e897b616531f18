"""scripts/model_findings.py collects every finished study's folder and keeps the studies measured before."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts import load_script


def _script():
    return load_script("model_findings")


def _depth_folder(work: Path, started: str) -> None:
    folder = work / "depth"
    folder.mkdir(parents=True)
    row = {"perplexity": 12.0, "perplexity_ci": [11.0, 13.0], "ratio": 1.2, "ratio_ci": [1.1, 1.3],
           "scored_tokens": 2044}
    summary = {"layers": 4, "scored_tokens": 2044, "signals": {"bi": [0.1, 0.2, 0.3, 0.4]},
               "dense": {"perplexity": 10.0, "perplexity_ci": [9.0, 11.0], "scored_tokens": 2044},
               "depth": [{"criterion": "bi", "k": 2, "removed_layers": [1, 2], **row}],
               "settings": {"seed": 0, "tokens": 2048}, "provenance": {"commit": "new"}}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "walls.json").write_text(json.dumps([{"study": "depth", "started": started, "seconds": 30.0}]))


def test_collect_adds_the_new_study_and_keeps_the_earlier_ones(tmp_path):
    earlier = {"studies": {"sweep_wanda": {"maps": {}, "settings": {"seed": 0}, "provenance": {"commit": "old"},
                                           "invocations": [{"started": "2026-01-01T00:00:00Z", "seconds": 60.0}],
                                           "wall_seconds": 60.0}}}
    _depth_folder(tmp_path, "2026-02-01T00:00:00Z")
    data = _script().collect("m", tmp_path, earlier)
    assert set(data["studies"]) == {"sweep_wanda", "depth"}
    assert data["studies"]["sweep_wanda"] == earlier["studies"]["sweep_wanda"]  # kept as it was
    assert data["studies"]["depth"]["rows"][0]["removed_layers"] == [1, 2]
    assert data["wall_seconds"] == 90.0 and data["provenance"] == {"commit": "old"}  # the first study's
    # a study measured again here replaces the earlier entry of the same name
    again = _script().collect("m", tmp_path, {"studies": {"depth": {"stale": True}}})
    assert "stale" not in again["studies"]["depth"] and again["provenance"] == {"commit": "new"}
