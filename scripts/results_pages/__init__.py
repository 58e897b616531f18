"""The results pages, rendered from the data in docs/results/data/ (``render_all``); scripts/render_results.py
writes or checks them."""

from __future__ import annotations

from collections.abc import Callable

from .analysis import depth_allocation, propagation, sensitivity, structure, zero_shot
from .budgets import budgets
from .common import ROOT, load_data
from .foundation import foundation
from .index import index
from .models import models_page
from .performance import layer_streaming, performance_renderers
from .plan import plan_page, quick_grids, sparsegpt_scope

#: Regions of hand-written files that are rendered from data: file -> {region name: renderer}.
REGIONS: dict[str, dict[str, Callable[[dict[str, dict]], str]]] = {
    "README.md": {"budgets": budgets},
    "docs/performance.md": {**performance_renderers(), "streaming": layer_streaming},
    "docs/plan.md": {"quick_grids": quick_grids, "sparsegpt_scope": sparsegpt_scope},
}


def fill_regions(text: str, regions: dict[str, Callable[[dict[str, dict]], str]], data: dict[str, dict]) -> str:
    """``text`` with each ``<!-- NAME:start -->...<!-- NAME:end -->`` region replaced by its rendering."""
    for name, render in regions.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{render(data)}\n{end}{tail}"
    return text


PAGES: dict[str, Callable[[dict[str, dict]], str]] = {
    "docs/results.md": index,
    "docs/results/foundation.md": foundation,
    "docs/results/propagation.md": propagation,
    "docs/results/sensitivity.md": sensitivity,
    "docs/results/depth_allocation.md": depth_allocation,
    "docs/results/structure.md": structure,
    "docs/results/eval.md": zero_shot,
    "docs/results/plan.md": plan_page,
    "docs/results/models.md": models_page,
}


def render_all(data: dict[str, dict] | None = None) -> dict[str, str]:
    """Page path (relative to the repository) -> its text (whole pages, and files with rendered regions)."""
    data = load_data() if data is None else data
    pages = {path: page(data) for path, page in PAGES.items()}
    for path, regions in REGIONS.items():
        pages[path] = fill_regions((ROOT / path).read_text(), regions, data)
    return pages
