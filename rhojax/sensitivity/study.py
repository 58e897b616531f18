"""The per-matrix sensitivity study: the sweep, its summaries (hierarchy, spread, CFI), the CFI's
yardstick and a paired-bootstrap interval for every site's perplexity ratio.

:class:`SweepSettings` holds every default. :func:`run_sweep_study` streams records into the run
folder's ``sweep.jsonl`` (a killed sweep resumes where it stopped) and returns the summary, which
carries the layer x kind ratio grid of each map so that figures can be drawn from it alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from jax.sharding import Mesh

from rhojax.compress import METHODS, NEEDS_HESSIAN, NEEDS_INPUT_NORM, calibration_stats
from rhojax.compress.calibration import block_statistics
from rhojax.data.corpora import statistics_split
from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows
from rhojax.eval.intervals import ratio_ci
from rhojax.io.stream import as_stream, parse_memory
from rhojax.progress import SILENT, Progress
from rhojax.runs import RunFolder
from rhojax.sensitivity.grid import parse_levels, sweep_grid
from rhojax.sensitivity.streamed import run_streamed_sweep, streamed_uniform_ratio
from rhojax.sensitivity.summary import compression_fragility_index, hierarchy, ratio_map, select, spread
from rhojax.sensitivity.sweep import run_sweep
from rhojax.sensitivity.uniform import uniform_ratio
from rhojax.settings import StreamSettings, setting

RESULTS = "sweep.jsonl"


@dataclasses.dataclass(frozen=True)
class SweepSettings(StreamSettings):
    """Methods, levels, token budgets and subset of the per-matrix sensitivity sweep."""

    methods: tuple[str, ...] = setting(("magnitude", "wanda"), "Methods: " + ", ".join(METHODS) + ".")
    levels: str = setting("", "Levels: '0.5,0.7' for every method, or 'rtn=4,8;wanda=0.5' per method "
                          "(sparsity; rank for lowrank*; bits for *rtn). Empty: 50%, rank 64, 4 bits.")
    text: str = setting("wiki", "Evaluation text (its evaluation split).")
    calib_text: str = setting("wiki", "Calibration text (its calibration split).")
    tokens: int = setting(2048, "Evaluation token budget: windows = tokens // seq-len.")
    calib_tokens: int = setting(4096, "Calibration token budget.")
    seq_len: int = setting(DEFAULT_SEQ_LEN, "Window length in tokens, BOS included.")
    layers: tuple[int, ...] = setting((), "Restrict to these layers (empty: all).")
    kinds: tuple[str, ...] = setting((), "Restrict to these kinds (empty: all).")
    seed: int = setting(0, "Seed of the randomised operators and the bootstrap.")
    window_batch: int = setting(4, "Evaluation windows per compiled call.")
    config_batch: int = setting(1, "Configurations of one layer run together (vmap).")
    yardstick: bool = setting(True, "Also compress every matrix at once (the CFI's yardstick) per complete map.")
    boots: int = setting(1000, "Bootstrap resamples of each ratio's interval.")

    def method_levels(self) -> dict[str, tuple[float, ...]]:
        return parse_levels(self.methods, [spec for spec in self.levels.split(";") if spec.strip()])


def summarize(records: Sequence[dict], dense_nll: np.ndarray, tokens_per_window: int, num_layers: int,
              kinds: Sequence[str], settings: SweepSettings, uniform=None) -> dict:
    """Per (method, level): hierarchy, spread, CFI (complete maps), yardstick, and the ratio grid with
    95% paired-bootstrap intervals over evaluation windows."""
    maps: dict = {}
    for method, level in sorted({(r["method"], float(r["level"])) for r in records}):
        chosen = select(records, method, level)
        s = spread(chosen)
        complete = len(chosen) == num_layers * len(kinds)
        lo, hi = ratio_ci(np.array([r["window_nll"] for r in chosen]), dense_nll, tokens_per_window,
                          boots=settings.boots, seed=settings.seed)
        ci = {(r["layer"], r["kind"]): (float(a), float(b)) for r, a, b in zip(chosen, lo, hi, strict=True)}
        grid_lo, grid_hi = np.full((num_layers, len(kinds)), np.nan), np.full((num_layers, len(kinds)), np.nan)
        for (layer, kind), (a, b) in ci.items():
            grid_lo[layer, list(kinds).index(kind)], grid_hi[layer, list(kinds).index(kind)] = a, b
        maps[f"{method}@{level:g}"] = {
            "method": method, "level": level, "sites": len(chosen), "complete": complete,
            "hierarchy": [{"kind": k, "median_ratio": v} for k, v in hierarchy(chosen)],
            "spread": s.spread, "max_ratio": s.max_ratio, "max_site": s.max_site,
            "min_ratio": s.min_ratio, "min_site": s.min_site,
            "cfi": compression_fragility_index(chosen) if complete else None,
            "uniform_ratio": uniform(method, level) if complete and uniform is not None else None,
            "kinds": list(kinds), "ratio": ratio_map(chosen, num_layers, kinds),
            "ratio_ci_low": grid_lo, "ratio_ci_high": grid_hi,
        }
    return maps


def streamed_states(settings: SweepSettings, eval_windows, hidden_size: int) -> int:
    """Configurations per streamed pass: 32, or as many final states (N x T x D float32 each) as fit in a
    quarter of ``memory_budget`` (at least one, at most 256)."""
    if not settings.memory_budget:
        return 32
    per_state = int(np.size(eval_windows)) * hidden_size * 4
    return max(1, min(256, parse_memory(settings.memory_budget) // 4 // per_state))


def run_sweep_study(model, run: RunFolder, settings: SweepSettings = SweepSettings(), *,
                    progress: Progress = SILENT, mesh: Mesh | None = None) -> dict:
    """Run (or resume) the sensitivity sweep of ``model`` in ``run``; return the summary. ``mesh`` spreads
    the sites of each batch over devices (:func:`rhojax.sensitivity.sweep.run_sweep`)."""
    s = settings
    config = model.config
    method_levels = s.method_levels()
    grid = sweep_grid(config, method_levels, layers=s.layers or None, kinds=s.kinds or None)
    eval_windows = corpus_windows(model.tokenizer, s.text, "evaluation", s.tokens, s.seq_len)
    stream = as_stream(model, s.stream)
    calibration = None
    if any(m in NEEDS_INPUT_NORM + NEEDS_HESSIAN for m in method_levels):
        calib_windows = corpus_windows(model.tokenizer, s.calib_text, statistics_split(s.calib_text),
                                       s.calib_tokens, s.seq_len)
        hessians = any(m in NEEDS_HESSIAN for m in method_levels)
        calibration = (calibration_stats(config, model.params, calib_windows, hessians=hessians) if stream is None
                       else block_statistics(stream, calib_windows, hessians=hessians))
    started = time.perf_counter()
    with progress.stage(f"sensitivity sweep ({len(grid)} configurations)", len(grid)) as update:
        if stream is None:
            records, reference = run_sweep(config, model.params, eval_windows, grid, run.file(RESULTS),
                                           calibration=calibration, seed=s.seed, window_batch=s.window_batch,
                                           config_batch=s.config_batch, on_record=update, mesh=mesh)
        else:
            records, reference = run_streamed_sweep(stream, eval_windows, grid, run.file(RESULTS),
                                                    calibration=calibration, seed=s.seed,
                                                    window_batch=s.window_batch,
                                                    max_states=streamed_states(s, eval_windows, config.hidden_size),
                                                    on_record=update)
    kinds = config.site_kinds if not s.kinds else tuple(s.kinds)
    tokens_per_window = eval_windows.shape[1] - 1

    def yardstick(method: str, level: float) -> float:
        def compute() -> float:
            kw = dict(calibration=calibration, seed=s.seed, batch_size=s.window_batch, dense_ppl=reference.perplexity)
            if stream is None:
                return uniform_ratio(config, model.params, eval_windows, method, level, **kw)
            return streamed_uniform_ratio(stream, eval_windows, method, level, **kw)

        return run.part(f"yardstick_{method}_{level:g}", compute)

    return {
        "settings": dataclasses.asdict(s),
        "methods": method_levels,
        "eval_windows": len(eval_windows),
        "scored_tokens": int(len(eval_windows) * tokens_per_window),
        "dense_ppl": reference.perplexity,
        "dense_window_nll": reference.nll,
        "configurations": len(grid),
        "layers": config.num_layers,
        "seconds_this_run": time.perf_counter() - started,
        "maps": summarize(records, reference.nll, tokens_per_window, config.num_layers, kinds, s,
                          uniform=yardstick if s.yardstick else None),
    }
