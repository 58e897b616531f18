"""``rhojax profile``: the contraction profile of one model (DESIGN.md section 2), saved as it goes.

Stages, each saved under ``OUT/parts/`` when done (a rerun with the same settings resumes):
profile at the main eps (K samples, with the jvp limit), an eps sweep, the Jacobian power-iteration
gain, Gaussian injection drift at every layer for each absorption eps (the main eps included), the
compression-induced profile and drift (magnitude pruning of every block matrix), and the same
profile and drift on the compressed model. ``profile.json`` assembles every number with its
settings; the figures are drawn from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import typer

from rhojax.commands.basics import DTYPE, MODEL, TEXT
from rhojax.commands.common import console, guarded, output_dir, progress_bar, run_metadata
from rhojax.compress.magnitude import magnitude_prune
from rhojax.compress.model import compress_sites
from rhojax.data.windows import corpus_windows
from rhojax.errors import RhojaxError
from rhojax.io.resolve import Model, load_model
from rhojax.models.transformer import forward
from rhojax.propagation import (
    DriftTracks,
    absorption_from_drift,
    compression_drift,
    compression_profile,
    correlation,
    injection_drift,
    jacobian_gain,
    lyapunov_trajectory,
    rho_profile,
)
from rhojax.report import propagation_figures as figures
from rhojax.report.jsonio import write_json

EPS_SWEEP = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
ABSORPTION_EPS = (1e-3, 1e-2, 1e-1, 0.3, 1.0)


class _Parts:
    """Stage results stored as ``OUT/parts/<name>.json``; a stage that is already there is not rerun."""

    def __init__(self, out: Path, settings: dict) -> None:
        self.dir = output_dir(out / "parts")
        path = self.dir / "settings.json"
        plain = json.loads(json.dumps(settings))
        if path.exists() and json.loads(path.read_text()) != plain:
            raise RhojaxError(f"{out} holds a profile run with other settings ({path}); use a new --out")
        write_json(path, plain)

    def get(self, name: str, compute: Callable[[], dict]) -> dict:
        path = self.dir / f"{name}.json"
        if not path.exists():
            write_json(path, compute())
        return json.loads(path.read_text())


def _drift_dict(d: DriftTracks) -> dict:
    return {"eps": d.eps, "scaling": d.scaling, "aggregate": d.aggregate, "tokenwise": d.tokenwise}


def _drift_from(d: dict) -> DriftTracks:
    return DriftTracks(d["eps"], d["scaling"], np.asarray(d["aggregate"]), np.asarray(d["tokenwise"]))


def _predicted(eps: float, rho: np.ndarray) -> np.ndarray:
    """Predicted drift ``sqrt(V_t) A_t = eps * prod_{s >= t} rho_s`` of an injection at each layer."""
    return eps * np.cumprod(np.asarray(rho)[::-1])[::-1]


def run_profile(
    model: Model,
    out: Path,
    *,
    text: str = "wiki",
    tokens: int = 2048,
    seq_len: int = 256,
    samples: int = 8,
    seed: int = 0,
    eps: float = 1e-2,
    sweep_eps: tuple[float, ...] = EPS_SWEEP,
    sweep_samples: int = 4,
    drift_tokens: int = 512,
    drift_samples: int = 4,
    absorption_eps: tuple[float, ...] = ABSORPTION_EPS,
    sparsity: float = 0.5,
    jacobian_tokens: int = 256,
    jacobian_iterations: int = 12,
    boots: int = 2000,
) -> dict:
    """Run the contraction profile of ``model`` into ``out`` (``profile.json`` + PNGs); return the summary.

    Entry point for ``rhojax analyze``: ``run_profile(model, out / "profile")``. Statistics use the
    calibration split (``lambada``/``news`` have only an evaluation split). Drift and absorption run
    on the first ``drift_tokens`` of the same windows, the Jacobian gain on the first ``jacobian_tokens``.
    """
    out = output_dir(out)
    absorption_eps = tuple(sorted(set(absorption_eps) | {eps}))
    split = "evaluation" if text in ("lambada", "news") else "calibration"
    settings = dict(text=text, split=split, tokens=tokens, seq_len=seq_len, samples=samples, seed=seed, eps=eps,
                    sweep_eps=list(sweep_eps), sweep_samples=sweep_samples, drift_tokens=drift_tokens,
                    drift_samples=drift_samples, absorption_eps=list(absorption_eps), sparsity=sparsity,
                    jacobian_tokens=jacobian_tokens, jacobian_iterations=jacobian_iterations, boots=boots,
                    compression=f"magnitude pruning, scope=matrix, sparsity {sparsity}, every block matrix")
    parts = _Parts(out, settings)
    config, params = model.config, model.params
    L = config.num_layers
    windows = corpus_windows(model.tokenizer, text, split, tokens, seq_len)
    n_drift = max(1, min(len(windows), drift_tokens // seq_len))
    n_jac = max(1, min(len(windows), jacobian_tokens // seq_len))
    console.print(f"{model.spec}: {len(windows)} x {seq_len} tokens ({split} split of {text}); "
                  f"drift on {n_drift}, Jacobian on {n_jac} windows; K = {samples}, seed {seed}")
    key = jax.random.key(seed)
    keys = {name: jax.random.fold_in(key, i) for i, name in enumerate(["profile", "jacobian", "compressed"])}
    _, hidden = forward(config, params, windows, return_hidden=True)
    compressed = compress_sites(params, lambda w, t, kind: magnitude_prune(w, sparsity), config.site_kinds)
    _, hidden_c = forward(config, compressed, windows, return_hidden=True)

    stages = 2 + len(sweep_eps) + 2 * len(absorption_eps) + 4
    with progress_bar("contraction profile (layer steps)", stages * L) as update:
        done = 0

        def step(n: int = L) -> None:
            nonlocal done
            done += n
            update(done)

        def at(base: int) -> Callable[[int], None]:
            return lambda n: update(base + n)

        prof = parts.get("profile", lambda: rho_profile(config, params, hidden, keys["profile"], eps=eps,
                                                        samples=samples).to_dict())
        step()
        sweep = [parts.get(f"sweep_{e:g}", lambda e=e: rho_profile(
            config, params, hidden, keys["profile"], eps=e, samples=sweep_samples, linearised=False).to_dict())
            for e in sweep_eps]
        step(len(sweep_eps) * L)
        gain = parts.get("jacobian", lambda: jacobian_gain(config, params, hidden[:, :n_jac], keys["jacobian"],
                                                           iterations=jacobian_iterations).to_dict())
        step()
        runs = {"aggregate": [], "tokenwise": []}
        for scaling, prefix in (("aggregate", "drift"), ("tokenwise", "drift_tokenwise")):
            for e in absorption_eps:
                runs[scaling].append(_drift_from(parts.get(f"{prefix}_{e:g}", lambda e=e, b=done, sc=scaling:
                    _drift_dict(injection_drift(config, params, hidden[:, :n_drift], keys["profile"], eps=e,
                                                samples=drift_samples, scaling=sc, on_layer=at(b))))))
                step()
        comp = parts.get("compression_profile", lambda: compression_profile(
            config, params, compressed, hidden).to_dict())
        step()
        comp_drift = parts.get("compression_drift", lambda b=done: dict(zip(("aggregate", "tokenwise"),
            compression_drift(config, params, compressed, hidden[:, :n_drift], on_layer=at(b)), strict=True)))
        step()
        prof_c = parts.get("compressed_profile", lambda: rho_profile(
            config, compressed, hidden_c, keys["compressed"], eps=eps, samples=samples,
            linearised=False).to_dict())
        step()
        drift_c = _drift_from(parts.get("compressed_drift", lambda b=done: _drift_dict(injection_drift(
            config, compressed, hidden_c[:, :n_drift], keys["compressed"], eps=eps, samples=drift_samples,
            on_layer=at(b)))))
        step()

    main = next(r for r in runs["aggregate"] if r.eps == eps)
    main_tok = next(r for r in runs["tokenwise"] if r.eps == eps)
    measured = main.measured()
    rho_dense, rho_dense_tok = np.asarray(prof["rho"]), np.asarray(prof["token_rho_mean"])
    rho_comp = np.asarray(prof_c["rho"])
    comp_pred = np.asarray(comp["output_error"]) * np.append(np.cumprod(rho_dense[::-1])[::-1][1:], 1.0)
    drift = {
        "eps": eps,
        "windows": n_drift,
        "samples": drift_samples,
        "predicted": _predicted(eps, rho_dense),
        "predicted_tokenwise_rho": _predicted(eps, rho_dense_tok),
        "measured": measured,
        "measured_tokenwise": main.measured("tokenwise"),
        "measured_samples": main.aggregate[:, :, -1],
        "correlation": correlation(_predicted(eps, rho_dense), measured, seed=seed, boots=boots),
        "correlation_tokenwise_rho": correlation(_predicted(eps, rho_dense_tok), measured, seed=seed, boots=boots),
        "tokenwise": {
            "note": "token-wise scaled injections, token-wise tracks (mean over non-BOS tokens), token-wise rho",
            "measured": main_tok.measured("tokenwise"),
            "correlation": correlation(_predicted(eps, rho_dense_tok), main_tok.measured("tokenwise"), seed=seed,
                                       boots=boots),
            "layer_index_spearman": correlation(np.arange(L, 0, -1), main_tok.measured("tokenwise"), seed=seed,
                                                boots=boots)["spearman"],
        },
        "layer_index_spearman": correlation(np.arange(L, 0, -1), measured, seed=seed, boots=boots)["spearman"],
    }
    post = {
        "compression": settings["compression"],
        "measured": drift_c.measured(),
        "predicted_dense_rho": _predicted(eps, rho_dense),
        "predicted_compressed_rho": _predicted(eps, rho_comp),
        "correlation_dense_rho": correlation(_predicted(eps, rho_dense), drift_c.measured(), seed=seed, boots=boots),
        "correlation_compressed_rho": correlation(_predicted(eps, rho_comp), drift_c.measured(), seed=seed,
                                                  boots=boots),
        "profile": prof_c,
    }
    compression = {
        **comp,
        "measured_drift": comp_drift["aggregate"],
        "measured_drift_tokenwise": comp_drift["tokenwise"],
        "predicted_drift": comp_pred,
        "correlation": correlation(comp_pred, comp_drift["aggregate"], seed=seed, boots=boots),
    }
    lyapunov = {
        "v0": eps**2,
        "predicted": lyapunov_trajectory(rho_dense, eps**2),
        "measured": main.aggregate[0].mean(axis=0) ** 2,
    }
    summary = {
        **run_metadata(model, **settings),
        "windows": len(windows),
        "layers": L,
        "profile": prof,
        "sweep": sweep,
        "jacobian": gain,
        "lyapunov": lyapunov,
        "drift": drift,
        "post_compression": post,
        "compression_induced": compression,
        "absorption": absorption_from_drift(runs["aggregate"]).to_dict(),
        "absorption_tokenwise": absorption_from_drift(runs["tokenwise"]).to_dict(),
    }
    write_json(out / "profile.json", summary)
    summary = json.loads((out / "profile.json").read_text())
    for name, draw in figures.FIGURES.items():
        draw(out / f"{name}.png", summary)
    return summary


@guarded
def profile(
    model: str = MODEL,
    out: Path = typer.Option(..., "--out", help="Result folder (profile.json, PNG figures, parts/ for resuming)."),
    text: str = TEXT,
    tokens: int = typer.Option(2048, "--tokens", help="Token budget of the profile: windows = tokens // seq-len."),
    seq_len: int = typer.Option(256, "--seq-len"),
    samples: int = typer.Option(8, "--samples", help="Gaussian perturbation samples K per layer."),
    seed: int = typer.Option(0, "--seed"),
    eps: float = typer.Option(1e-2, "--eps", help="Main relative perturbation size ||e|| / ||h||."),
    drift_tokens: int = typer.Option(512, "--drift-tokens", help="Tokens (first windows) for drift/absorption."),
    drift_samples: int = typer.Option(4, "--drift-samples"),
    sparsity: float = typer.Option(0.5, "--sparsity", help="Magnitude-pruning sparsity of the compressed model."),
    dtype: str = DTYPE,
) -> None:
    """Contraction profile of MODEL: rho, alpha/beta, V_t, Jacobian gains, drift, post-compression, absorption."""
    loaded = load_model(model, dtype=dtype)
    summary = run_profile(loaded, out, text=text, tokens=tokens, seq_len=seq_len, samples=samples, seed=seed,
                          eps=eps, drift_tokens=drift_tokens, drift_samples=drift_samples, sparsity=sparsity)
    c = summary["drift"]["correlation"]
    console.print(f"predicted vs measured drift: Spearman {c['spearman']:.3f} "
                  f"[{c['spearman_ci'][0]:.3f}, {c['spearman_ci'][1]:.3f}] over {summary['layers']} layers")
    console.print(f"wrote {Path(out) / 'profile.json'} and figures")
