"""The structure study: variance vs importance subspaces, block linear replacement and early exit of one model.

Fits (covariances, gradient moments, ridge maps) read windows of ``calib_text`` (its
:func:`~rhojax.data.corpora.statistics_split`); R^2, perplexity and early-exit numbers read the
evaluation split of ``text``. :class:`StructureSettings` holds every default. Every unit of work is
a part of a :class:`~rhojax.runs.RunFolder` (the logit lens, the subspaces, the span fits, each
ablated state, each replaced span), and the intermediate states a part needs are computed only when
a part is missing, so a finished run reruns without recomputing anything.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.progress import SILENT, Progress
from rhojax.runs import RunFolder
from rhojax.settings import TextSettings, setting
from rhojax.structure.early_exit import collect_lens, early_exit_summary
from rhojax.structure.hidden import collect_hidden
from rhojax.structure.replacement import compose, compression_ratio, fit_spans, r_squared, replacement_nll
from rhojax.structure.subspaces import ablation_nll, compare_subspaces, random_basis, subspace_statistics

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


@dataclasses.dataclass(frozen=True)
class StructureSettings(TextSettings):
    """Texts, token budgets, subspace size and replacement spans of the structure study (covariances and ridge
    maps read ``calib_text``; R^2, perplexity and the logit lens the evaluation split of ``text``)."""

    calib_tokens: int = setting(8192, "Calibration token budget (covariances and maps).")
    k: int = setting(16, "Dimension of the variance and importance subspaces.")
    ablate_every: int = setting(1, "Project subspaces out at every n-th state (0: none).")
    spans: tuple[int, ...] = setting((2, 3, 4), "Lengths of multi-block replacements.")
    span_every: int = setting(3, "Multi-block spans start every n blocks.")
    replace_every: int = setting(1, "Perplexity after replacing every n-th single block.")
    ridge: float = setting(1e-4, "Ridge strength, relative to tr(C_xx) / D.")
    batch_size: int = setting(4, "Windows per compiled call.")
    seed: int = setting(0, "Seed of the random control subspaces.")

    def __post_init__(self) -> None:
        if self.replace_every < 1 or self.ablate_every < 0:
            raise RhojaxError(f"replace_every {self.replace_every} must be >= 1 and ablate_every "
                              f"{self.ablate_every} >= 0")
        if self.k < 1:
            raise RhojaxError(f"k {self.k}: the subspaces need at least one dimension")


def replacement_spans(num_layers: int, lengths: tuple[int, ...], every: int) -> list[tuple[int, int]]:
    """Every single block, plus spans of each length in ``lengths`` starting every ``every`` blocks."""
    spans = [(t, 1) for t in range(num_layers)]
    spans += [(t, m) for m in lengths if m > 1 for t in range(0, num_layers - m + 1, every)]
    return spans


class _Inputs:
    """Clean states, statistics and fits of one model, each computed on first use (only a missing part needs them)."""

    def __init__(self, config: ModelConfig, params: dict, cal: np.ndarray, ev: np.ndarray, s: StructureSettings):
        self.config, self.params, self.cal, self.ev, self.s = config, params, cal, ev, s
        self.half_batch = max(1, s.batch_size // 2)

    @functools.cached_property
    def hidden(self):
        return collect_hidden(self.config, self.params, self.ev, self.s.batch_size)

    @functools.cached_property
    def stats(self):
        return subspace_statistics(self.config, self.params, self.cal, self.half_batch)

    @functools.cached_property
    def layers(self):
        return compare_subspaces(self.stats, self.s.k)

    @functools.cached_property
    def candidates(self) -> list[tuple[str, object]]:
        """Every fitted span (``direct``) and every multi-block span chained from single-block maps."""
        spans = replacement_spans(self.config.num_layers, self.s.spans, self.s.span_every)
        fits = fit_spans(self.config, self.params, self.cal, spans, self.s.ridge, self.s.batch_size)
        singles = {f.start: f for f in fits if f.length == 1}
        return [("direct", f) for f in fits] + [
            ("chained", functools.reduce(compose, [singles[t] for t in range(f.start, f.start + f.length)]))
            for f in fits if f.length > 1
        ]


def structure_study(config: ModelConfig, params: dict, cal: np.ndarray, ev: np.ndarray, run: RunFolder,
                    settings: StructureSettings = StructureSettings(), *, progress: Progress = SILENT) -> dict:
    """The study on calibration windows ``cal`` and evaluation windows ``ev`` (each ``(N, T)``); returns the
    summary (``dense_perplexity``, ``headline``, ``subspaces``, ``fits``, ``ablation``, ``replacement``,
    ``early_exit``)."""
    s = settings
    x = _Inputs(config, params, cal, ev, s)
    L = config.num_layers
    ablated = list(range(0, L + 1, s.ablate_every)) if s.ablate_every > 0 else []
    spans = replacement_spans(L, s.spans, s.span_every)
    replaced = [("direct", t, m) for t, m in spans if m > 1 or t % s.replace_every == 0]
    replaced += [("chained", t, m) for t, m in spans if m > 1]
    with progress.stage("structure (lens, subspaces, fits, ablations, replacements)",
                        3 + len(ablated) + len(replaced)) as update:
        early = run.part("early_exit", lambda: early_exit_summary(
            collect_lens(config, params, x.hidden, ev, x.half_batch), THRESHOLDS))
        dense_nll = float(early["lens_mean_nll"][-1])
        dense_ppl = float(np.exp(dense_nll))
        update(1)
        subspaces = run.part("subspaces", lambda: {"tokens": x.stats.tokens,
                                                   "layers": [layer.to_dict() for layer in x.layers]})
        update(2)
        fits = run.part("fits", lambda: [{"method": m, "start": f.start, "length": f.length, **r_squared(f, x.hidden),
                                          "compression_ratio": compression_ratio(config, f.length)}
                                         for m, f in x.candidates])
        update(3)

        def ablate(t: int) -> dict:
            control = random_basis(jax.random.fold_in(jax.random.PRNGKey(s.seed), t), config.hidden_size, s.k)
            layer = x.layers[t]
            bases = {"variance": layer.variance_basis, "importance": layer.importance_basis, "random": control}
            nll = {n: ablation_nll(config, params, x.hidden, ev, t, b, x.stats.mean[t], s.batch_size)
                   for n, b in bases.items()}
            return {"layer": t, "k": s.k, "nll": nll, "delta_nll": {n: v - dense_nll for n, v in nll.items()}}

        ablation = []
        for t in ablated:
            ablation.append(run.part(f"ablation_{t}", lambda t=t: ablate(t)))
            update(3 + len(ablation))

        def replace(method: str, start: int, length: int) -> dict:
            fit = next(f for m, f in x.candidates if (m, f.start, f.length) == (method, start, length))
            nll = replacement_nll(config, params, fit, x.hidden, ev, s.batch_size)
            return {"method": method, "start": start, "length": length, **r_squared(fit, x.hidden), "nll": nll,
                    "perplexity": float(np.exp(nll)), "perplexity_increase": float(np.exp(nll)) - dense_ppl,
                    "compression_ratio": compression_ratio(config, length)}

        replacement = []
        for method, start, length in replaced:
            replacement.append(run.part(f"replacement_{method}_{start}_{length}",
                                        lambda m=method, t=start, n=length: replace(m, t, n)))
            update(3 + len(ablation) + len(replacement))
    replacement.sort(key=lambda r: (r["method"], r["length"], r["start"]))

    single = [r for r in fits if r["length"] == 1]
    half = L // 2
    return {
        "settings": dataclasses.asdict(s),
        "calibration_windows": list(cal.shape),
        "evaluation_windows": list(ev.shape),
        "scored_tokens": int(ev.shape[0] * (ev.shape[1] - 1)),
        "dense_perplexity": dense_ppl,
        "headline": {
            "r2_single_block": [r["r2"] for r in single],
            "best_single_replacement": min((r for r in replacement if r["length"] == 1),
                                           key=lambda r: r["perplexity"]),
            "mean_overlap": float(np.mean([layer["overlap"] for layer in subspaces["layers"]])),
            "chance_overlap": s.k / config.hidden_size,
            "settled_at_half_depth": float(early["settled"][half]),
            "agreement_at_half_depth": float(early["agreement"][half]),
        },
        "subspaces": subspaces["layers"],
        "subspace_tokens": subspaces["tokens"],
        "fits": fits,
        "ablation": ablation,
        "replacement": replacement,
        "early_exit": early,
    }


def run_structure_study(model, run: RunFolder, settings: StructureSettings = StructureSettings(), *,
                        progress: Progress = SILENT) -> dict:
    """Run (or resume) the structure study of ``model`` in ``run``; return the summary."""
    cal, ev = settings.calibration_windows(model.tokenizer), settings.evaluation_windows(model.tokenizer)
    return structure_study(model.config, model.params, cal, ev, run, settings, progress=progress)
