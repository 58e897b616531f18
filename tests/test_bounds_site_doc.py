"""The site-bound numbers in docs/results/bounds.md are the rendering of their committed data file."""

from __future__ import annotations

import json
from pathlib import Path

from rhojax.report.site_bounds_table import rendered_block, site_bounds_markdown

ROOT = Path(__file__).resolve().parents[1]
DATA = "docs/results/data/site_bounds_smollm2.json"


def test_doc_tables_are_rendered_from_the_data_file():
    summary = json.loads((ROOT / DATA).read_text())
    for key in ("command", "commit", "seed", "machine", "wall_seconds", "levels", "calibration_tokens"):
        assert summary.get(key) is not None, key
    block = rendered_block((ROOT / "docs" / "results" / "bounds.md").read_text())
    assert block == site_bounds_markdown(summary, DATA), "re-render with scripts/render_site_bounds.py"
    assert summary["configurations"] == len(summary["rows"])
    assert len({(r["layer"], r["kind"], r["level"]) for r in summary["rows"]}) == len(summary["rows"])  # no twice
