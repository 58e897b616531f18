"""The bounds study: the per-matrix bound checker over a plan of levels and the site bounds against the
measured block-output change, each level a part of a :class:`~rhojax.runs.RunFolder`.

:class:`BoundsSettings` holds every default. The checker's levels are computed one part each (a
killed run resumes at the next level; ``shard=(k, n)`` lets ``n`` processes share one folder, each
taking every ``n``-th level); the site bounds are one part. Given a sweep's records, the site bounds
are also ranked against the measured perplexity sensitivity (Spearman) for the levels both share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax

from rhojax.bounds.checker import check_bounds, site_inputs
from rhojax.bounds.levels import plan
from rhojax.bounds.site_study import evaluate_sites, needs_stats, site_plan, summarize_sites
from rhojax.bounds.summary import level_record, summarize
from rhojax.compress import NEEDS_HESSIAN, calibration_stats
from rhojax.data.corpora import statistics_split
from rhojax.data.windows import corpus_windows
from rhojax.progress import SILENT, Progress
from rhojax.runs import RunFolder
from rhojax.settings import setting


@dataclasses.dataclass(frozen=True)
class BoundsSettings:
    """Plans, token budgets and seed of the bound checker and the site bounds."""

    text: str = setting("wiki", "Calibration text (its statistics split): activations and statistics.")
    plan: str = setting("default", "Checker levels: default (CPU-sized), full (GPU), quick (2 levels), '' for none.")
    tokens: int = setting(512, "Calibration tokens for Wanda norms / SparseGPT Hessians of the checker.")
    seq_len: int = setting(128, "Window length of the checker's calibration windows.")
    check_tokens: int = setting(32, "Activation rows the checker's bounds are evaluated on.")
    chain_depth: int = setting(2, "Layers in the product-propagation chain.")
    seed: int = setting(0, "PRNG seed of the rotated-RTN rotations.")
    site_plan: str = setting("default", "Site-bound levels: default (RTN 3-bit, magnitude 50%, Wanda 50%), quick "
                             "(RTN 3-bit), wanda (Wanda 50%), or '' for none.")
    site_tokens: int = setting(64, "Calibration tokens whose block inputs the site bounds are evaluated on.")
    site_seq_len: int = setting(64, "Window length of the site bounds' windows.")

    def __post_init__(self) -> None:
        if self.plan:
            plan(self.plan)
        if self.site_plan:
            site_plan(self.site_plan)


def run_bounds_study(model, run: RunFolder, settings: BoundsSettings = BoundsSettings(), *,
                     progress: Progress = SILENT, sweep: Sequence[dict] = (), shard: tuple[int, int] = (0, 1)) -> dict:
    """Run (or resume) the checker and the site bounds of ``model`` in ``run``; return the summary.

    ``sweep``: sweep records (``sweep.jsonl``) for the site bounds' Spearman against perplexity sensitivity.
    """
    s = settings
    config, params = model.config, model.params
    summary: dict = {"settings": dataclasses.asdict(s)}
    levels = plan(s.plan) if s.plan else ()
    index, count = shard
    todo = [level for i, level in enumerate(levels) if i % count == index and not run.has(f"level_{level.label}")]
    if todo:
        windows = corpus_windows(model.tokenizer, s.text, statistics_split(s.text), s.tokens, s.seq_len)
        stats = calibration_stats(config, params, windows, hessians=any(v.method in NEEDS_HESSIAN for v in todo))
        inputs = site_inputs(config, params, windows, s.check_tokens)
        key = jax.random.PRNGKey(s.seed)
        with progress.stage(f"bound checker ({len(levels)} levels, {len(levels) - len(todo)} done)", len(todo)) as up:
            for i, level in enumerate(todo):
                run.part(f"level_{level.label}", lambda level=level: level_record(next(iter(check_bounds(
                    config, params, inputs, stats, [level], key=key, chain_depth=s.chain_depth)))))
                up(i + 1)
    if levels:
        finished = [run.read(f"level_{v.label}") for v in levels if run.has(f"level_{v.label}")]
        summary["checker"] = {"levels": len(levels), "finished": len(finished), **summarize(finished)}
    if s.site_plan:
        site_levels = site_plan(s.site_plan)

        def sites() -> list[dict]:
            windows = corpus_windows(model.tokenizer, s.text, statistics_split(s.text), s.site_tokens, s.site_seq_len)
            norms, hessians = needs_stats(site_levels)
            stats = calibration_stats(config, params, windows, hessians=hessians) if norms else None
            with progress.stage(f"site bounds ({len(site_levels)} levels x {len(config.sites)} sites)", 1) as up:
                rows = evaluate_sites(config, params, windows, site_levels, stats=stats, key=jax.random.PRNGKey(s.seed))
                up(1)
            return rows

        rows = run.part("site_rows", sites)
        summary["sites"] = {"levels": [level.label for level in site_levels], **summarize_sites(rows, sweep)}
    return summary
