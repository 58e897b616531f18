"""Re-render the site-bound tables of docs/results/bounds.md from their committed data file.

    python scripts/render_site_bounds.py [docs/results/data/site_bounds_smollm2.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rhojax.report.site_bounds_table import rendered_block, site_bounds_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "bounds.md"
DATA = "docs/results/data/site_bounds_smollm2.json"


def main(data: str = DATA) -> None:
    block = site_bounds_markdown(json.loads((ROOT / data).read_text()), data)
    text = DOC.read_text()
    old = rendered_block(text)
    if not old:
        raise SystemExit(f"{DOC}: no site-bounds markers")
    DOC.write_text(text.replace(old, block))


if __name__ == "__main__":
    main(*sys.argv[1:])
