"""Render the results pages (docs/results.md and docs/results/*.md) from the data in docs/results/data/.

Every number on those pages comes from a committed data file that records its command, commit,
package versions, settings, seed, machine and wall time; nothing is typed by hand. Run

    .venv/bin/python scripts/render_results.py          # rewrite the pages
    .venv/bin/python scripts/render_results.py --check  # exit 1 if a committed page differs

The renderers live in ``scripts/results_pages/`` (one module per page); ``tests/test_results_render.py``
runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_pages import ROOT, render_all  # noqa: E402  (the package sits beside this script)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if a committed page differs from its data.")
    args = parser.parse_args()
    stale = []
    for path, text in render_all().items():
        target = ROOT / path
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(path)
        else:
            target.write_text(text)
    if stale:
        print("pages out of date with their data (run scripts/render_results.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
