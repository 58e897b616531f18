"""``rhojax structure``: variance vs importance, block linear replacement and early exit of one model.

Fits (covariances, gradient moments, ridge maps) use the calibration split; R^2, perplexity and
early-exit numbers use the evaluation split. The slow sweeps (subspace ablation, replacement
perplexity) append one JSON line per finished item and resume from them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np
import typer

from rhojax.commands.common import DTYPE, MODEL, TEXT, console, guarded, output_dir, progress_bar, run_metadata
from rhojax.data.corpora import BUILTIN_SOURCES
from rhojax.data.windows import corpus_windows
from rhojax.errors import RhojaxError
from rhojax.io.resolve import Model, load_model
from rhojax.models.config import ModelConfig
from rhojax.report import structure_figures as figures
from rhojax.report.jsonio import append_jsonl, read_jsonl, write_json
from rhojax.structure.early_exit import collect_lens, early_exit_summary
from rhojax.structure.hidden import collect_hidden
from rhojax.structure.replacement import compose, compression_ratio, fit_spans, r_squared, replacement_nll
from rhojax.structure.subspaces import ablation_nll, compare_subspaces, random_basis, subspace_statistics

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def replacement_spans(num_layers: int, lengths: tuple[int, ...], every: int) -> list[tuple[int, int]]:
    """Every single block, plus spans of each length in ``lengths`` starting every ``every`` blocks."""
    spans = [(t, 1) for t in range(num_layers)]
    spans += [(t, m) for m in lengths if m > 1 for t in range(0, num_layers - m + 1, every)]
    return spans


def _check_settings(out: Path, settings: dict) -> None:
    path = out / "settings.json"
    if path.exists() and json.loads(path.read_text()) != json.loads(json.dumps(settings)):
        raise RhojaxError(f"{out} holds a structure run with other settings ({path}); use a new --out")
    write_json(path, settings)


@dataclasses.dataclass(frozen=True)
class StructureSettings:
    """Every setting of a structure run (saved to ``settings.json``; a resumed run must match)."""

    text: str = "wiki"
    calibration_tokens: int = 8192
    evaluation_tokens: int = 4096
    seq_len: int = 512
    k: int = 16
    ablate_every: int = 1
    span_lengths: tuple[int, ...] = (2, 3, 4)
    span_every: int = 3
    replace_every: int = 1
    ridge: float = 1e-4
    batch_size: int = 4
    seed: int = 0

    @property
    def calibration_text(self) -> str:
        """The evaluation-only corpora (lambada, news) calibrate on wiki; wiki and files on themselves."""
        return "wiki" if self.text in BUILTIN_SOURCES else self.text


def run_structure(model: Model, out: Path, settings: StructureSettings = StructureSettings()) -> dict:
    """Run the whole structure analysis of ``model`` into ``out``; returns the summary dict.

    The entry point for ``rhojax analyze``: ``run_structure(model, out / "structure")``.
    """
    s = settings
    if s.calibration_text == s.text != "wiki":
        console.print(f"[yellow]note:[/] --text {s.text} is used whole for calibration and evaluation (they overlap)")
    cal = corpus_windows(model.tokenizer, s.calibration_text, "calibration", s.calibration_tokens, s.seq_len)
    ev = corpus_windows(model.tokenizer, s.text, "evaluation", s.evaluation_tokens, s.seq_len)
    return analyze_structure(model.config, model.params, cal, ev, out, s, run_metadata(model))


def analyze_structure(
    config: ModelConfig,
    params: dict,
    cal: np.ndarray,
    ev: np.ndarray,
    out: Path,
    s: StructureSettings,
    metadata: dict,
) -> dict:
    """The analysis on calibration windows ``cal`` and evaluation windows ``ev``, saved under ``out``."""
    if s.replace_every < 1 or s.ablate_every < 0:
        raise RhojaxError("--replace-every must be >= 1 and --ablate-every >= 0")
    out = output_dir(out)
    _check_settings(out, dataclasses.asdict(s))
    name = config.name or "model"
    console.print(f"{name}: calibration {cal.shape[0]} x {cal.shape[1]}, evaluation {ev.shape[0]} x {ev.shape[1]}")
    with progress_bar("clean states (evaluation)", len(ev)) as update:
        hidden = collect_hidden(config, params, ev, s.batch_size, update)
    half_batch = max(1, s.batch_size // 2)

    # Early exit: the logit lens of every cached state.
    console.print("logit lens through depth")
    early = early_exit_summary(collect_lens(config, params, hidden, ev, half_batch), THRESHOLDS)
    dense_nll = float(early["lens_mean_nll"][-1])
    dense_ppl = float(np.exp(dense_nll))
    write_json(out / "early_exit.json", early)

    # Variance vs importance: statistics and subspaces.
    with progress_bar("activation and gradient moments (calibration)", len(cal)) as update:
        stats = subspace_statistics(config, params, cal, half_batch, on_batch=update)
    layers = compare_subspaces(stats, s.k)
    subspaces = [layer.to_dict() for layer in layers]
    write_json(out / "subspaces.json", {"tokens": stats.tokens, "layers": subspaces})

    # Block linear replacement: maps and their R^2 (cheap: clean forward passes and least squares).
    spans = replacement_spans(config.num_layers, s.span_lengths, s.span_every)
    with progress_bar("ridge maps (calibration)", len(cal)) as update:
        fits = fit_spans(config, params, cal, spans, s.ridge, s.batch_size, on_batch=update)
    singles = {f.start: f for f in fits if f.length == 1}
    candidates = [("direct", f) for f in fits] + [
        ("chained", functools.reduce(compose, [singles[t] for t in range(f.start, f.start + f.length)]))
        for f in fits if f.length > 1
    ]
    fit_quality = [{"method": m, "start": f.start, "length": f.length, **r_squared(f, hidden),
                    "compression_ratio": compression_ratio(config, f.length)} for m, f in candidates]
    write_json(out / "fits.json", fit_quality)
    single = [r for r in fit_quality if r["length"] == 1]

    # Subspace ablation (one network suffix per state and subspace).
    ablation_path = out / "ablation.jsonl"
    done = {r["layer"] for r in read_jsonl(ablation_path)}
    ablated = range(0, config.num_layers + 1, s.ablate_every) if s.ablate_every > 0 else []
    todo = [t for t in ablated if t not in done]
    with progress_bar("subspace ablation", len(todo)) as update:
        for i, t in enumerate(todo):
            control = random_basis(jax.random.fold_in(jax.random.PRNGKey(s.seed), t), config.hidden_size, s.k)
            bases = {"variance": layers[t].variance_basis, "importance": layers[t].importance_basis, "random": control}
            nll = {n: ablation_nll(config, params, hidden, ev, t, b, stats.mean[t], s.batch_size)
                   for n, b in bases.items()}
            append_jsonl(ablation_path, {"layer": t, "k": s.k, "nll": nll,
                                         "delta_nll": {n: v - dense_nll for n, v in nll.items()}})
            update(i + 1)
    ablation = sorted(read_jsonl(ablation_path), key=lambda r: r["layer"])

    # Perplexity after replacement (one network suffix per span).
    replacement_path = out / "replacement.jsonl"
    done = {(r["method"], r["start"], r["length"]) for r in read_jsonl(replacement_path)}
    todo = [(m, f) for m, f in candidates if (m, f.start, f.length) not in done
            and (f.length > 1 or f.start % s.replace_every == 0)]
    with progress_bar("replacement perplexity", len(todo)) as update:
        for i, (method, fit) in enumerate(todo):
            nll = replacement_nll(config, params, fit, hidden, ev, s.batch_size)
            append_jsonl(replacement_path, {
                "method": method, "start": fit.start, "length": fit.length, **r_squared(fit, hidden),
                "nll": nll, "perplexity": float(np.exp(nll)), "perplexity_increase": float(np.exp(nll)) - dense_ppl,
                "compression_ratio": compression_ratio(config, fit.length),
            })
            update(i + 1)
    replacement = sorted(read_jsonl(replacement_path), key=lambda r: (r["method"], r["length"], r["start"]))

    figures.r2_through_depth(out / "r2_through_depth.png", single, name)
    figures.overlap_through_depth(out / "overlap_through_depth.png", subspaces, name)
    figures.easy_tokens_through_depth(out / "easy_tokens_through_depth.png", early, name)
    figures.replacement_perplexity(out / "replacement_perplexity.png", replacement, dense_ppl, name)
    if ablation:
        figures.ablation_loss(out / "ablation_loss.png", ablation, name)
    figures.exit_tradeoff(out / "early_exit_tradeoff.png", early, dense_ppl, name)

    half = config.num_layers // 2
    summary = {
        **metadata,
        "settings": dataclasses.asdict(s),
        "calibration_windows": list(cal.shape),
        "evaluation_windows": list(ev.shape),
        "scored_tokens": int(ev.shape[0] * (ev.shape[1] - 1)),
        "dense_perplexity": dense_ppl,
        "headline": {
            "r2_single_block": [r["r2"] for r in single],
            "best_single_replacement": min((r for r in replacement if r["length"] == 1),
                                           key=lambda r: r["perplexity"]),
            "mean_overlap": float(np.mean([layer.overlap for layer in layers])),
            "chance_overlap": s.k / config.hidden_size,
            "settled_at_half_depth": float(early["settled"][half]),
            "agreement_at_half_depth": float(early["agreement"][half]),
        },
        "subspaces": subspaces,
        "fits": fit_quality,
        "ablation": ablation,
        "replacement": replacement,
        "early_exit": early,
    }
    write_json(out / "structure.json", summary)
    return summary


@guarded
def structure(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Result folder (resumes a run with the same settings)."),
    text: str = TEXT,
    calibration_tokens: int = typer.Option(8192, "--calibration-tokens", help="Tokens for covariances and maps."),
    evaluation_tokens: int = typer.Option(4096, "--tokens", help="Evaluation tokens (R^2, perplexity, lens)."),
    seq_len: int = typer.Option(512, "--seq-len"),
    k: int = typer.Option(16, "--k", help="Dimension of the variance and importance subspaces."),
    ablate_every: int = typer.Option(1, "--ablate-every", help="Project subspaces out at every n-th state (0: none)."),
    span_lengths: str = typer.Option("2,3,4", "--spans", help="Lengths of multi-block replacements."),
    span_every: int = typer.Option(3, "--span-every", help="Multi-block spans start every n blocks."),
    replace_every: int = typer.Option(1, "--replace-every", help="Perplexity after replacing every n-th block."),
    ridge: float = typer.Option(1e-4, "--ridge", help="Ridge strength, relative to tr(C_xx) / D."),
    batch_size: int = typer.Option(4, "--batch-size"),
    seed: int = typer.Option(0, "--seed", help="Seed of the random control subspaces."),
    dtype: str = DTYPE,
) -> None:
    """Variance vs importance, block linear replacement and early exit of MODEL (JSON + PNG under --out)."""
    try:
        lengths = tuple(int(m) for m in span_lengths.split(",") if m.strip())
    except ValueError:
        raise RhojaxError(f"--spans {span_lengths!r}: give block counts separated by commas, e.g. 2,3,4") from None
    settings = StructureSettings(
        text=text, calibration_tokens=calibration_tokens, evaluation_tokens=evaluation_tokens, seq_len=seq_len,
        k=k, ablate_every=ablate_every, span_lengths=lengths, span_every=span_every, replace_every=replace_every,
        ridge=ridge,
        batch_size=batch_size, seed=seed,
    )
    summary = run_structure(load_model(model, dtype=dtype), out, settings)
    h = summary["headline"]
    best = h["best_single_replacement"]
    console.print(
        f"dense perplexity {summary['dense_perplexity']:.3f}; best single-block replacement: block {best['start']} "
        f"(R^2 {best['r2']:.3f}, perplexity {best['perplexity']:.3f}, {best['compression_ratio']:.1f}x); "
        f"mean overlap {h['mean_overlap']:.3f} (chance {h['chance_overlap']:.3f}); "
        f"settled at half depth {h['settled_at_half_depth']:.1%}"
    )
    console.print(f"wrote {Path(out) / 'structure.json'} and figures")
