"""The documentation stands alone: no pointer outside the repository, and every link to a definition lands.

docs/results/ is regenerated from data by its own command and checked by its own test.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = ROOT / "docs" / "definitions.md"
MARKDOWN = [ROOT / "README.md", DEFINITIONS, ROOT / "docs" / "tutorial.md"]
SOURCES = MARKDOWN + [ROOT / "requirements-assets.txt"] + sorted(
    p for folder in ("rhojax", "tests", "property_tests", "scripts", "benchmarks")
    for p in (ROOT / folder).rglob("*.py")
)
#: Spelled in pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "DESIGN" + ".md")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", markdown.read_text(), re.MULTILINE)}


def test_github_anchor_rule():
    assert github_anchor("Attention sinks: aggregate and token-wise statistics") == \
        "attention-sinks-aggregate-and-token-wise-statistics"
    assert github_anchor("Layer-wise sparsity allocation") == "layer-wise-sparsity-allocation"


def test_nothing_points_outside_the_repository():
    offenders = [f"{p.relative_to(ROOT)}: {pattern}" for p in SOURCES for pattern in OUTSIDE
                 if pattern in p.read_text()]
    assert len(SOURCES) > 50
    assert not offenders, f"pointers outside the repository (cite docs/definitions.md instead): {offenders}"


def test_every_link_to_a_definition_lands_on_a_heading():
    known = anchors(DEFINITIONS)
    cited = {(p.relative_to(ROOT), m.group(1)) for p in SOURCES
             for m in re.finditer(r"definitions\.md#([A-Za-z0-9_-]+)", p.read_text())}
    cited |= {(DEFINITIONS.relative_to(ROOT), m.group(1))
              for m in re.finditer(r"\]\(#([A-Za-z0-9_-]+)\)", DEFINITIONS.read_text())}
    assert len(cited) > 10
    missing = sorted((str(path), anchor) for path, anchor in cited if anchor not in known)
    assert not missing, f"links to headings that do not exist: {missing}"


def test_relative_links_point_to_files_in_the_repository():
    broken = []
    for markdown in MARKDOWN:
        for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", markdown.read_text()):
            target = m.group(1)
            resolved = (markdown.parent / target).resolve()
            if "://" not in target and not (resolved.is_relative_to(ROOT) and resolved.exists()):
                broken.append(f"{markdown.relative_to(ROOT)}: {target}")
    assert not broken, f"broken links: {broken}"
