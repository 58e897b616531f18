"""The contraction-profile study: rho at one eps with its intervals, an eps sweep, the Jacobian gain,
drift and absorption, the compression-induced profile and the check after compression.

:class:`ProfileSettings` holds every default. :func:`run_profile_study` computes each stage as a
part of a :class:`~rhojax.runs.RunFolder` (a rerun with the same settings skips finished stages) and
returns the assembled summary (plain JSON data); figures are drawn by :mod:`rhojax.report`.
Statistics read the calibration split (an evaluation-only corpus: its evaluation split).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh

from rhojax.compress.magnitude import magnitude_prune
from rhojax.compress.model import compress_sites
from rhojax.data.corpora import statistics_split
from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows
from rhojax.progress import SILENT, Progress
from rhojax.propagation.absorption import absorption_from_drift
from rhojax.propagation.compression import compression_drift, compression_profile
from rhojax.propagation.correlation import correlation
from rhojax.propagation.drift import DriftTracks, injection_drift, injection_drifts
from rhojax.propagation.jacobian import jacobian_gain
from rhojax.propagation.profile import lyapunov_trajectory, rho_profile
from rhojax.runs import RunFolder
from rhojax.settings import setting
from rhojax.sharding import clean_states


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    """Budgets and perturbation sizes of the contraction-profile study."""

    text: str = setting("wiki", "Corpus name (wiki, lambada, news) or a text file.")
    tokens: int = setting(2048, "Token budget of the profile: windows = tokens // seq-len.")
    seq_len: int = setting(DEFAULT_SEQ_LEN, "Window length in tokens, BOS included.")
    samples: int = setting(8, "Gaussian perturbation samples K per layer.")
    seed: int = setting(0, "Seed of every perturbation and bootstrap.")
    eps: float = setting(1e-2, "Main relative perturbation size ||e|| / ||h||.")
    sweep_eps: tuple[float, ...] = setting((1e-4, 1e-3, 1e-2, 1e-1, 1.0), "Relative sizes of the eps sweep.")
    sweep_samples: int = setting(4, "Samples per layer in the eps sweep.")
    drift_tokens: int = setting(512, "Tokens (first windows) for drift and absorption.")
    drift_samples: int = setting(4, "Samples per layer for drift and absorption.")
    absorption_eps: tuple[float, ...] = setting((1e-3, 1e-2, 1e-1, 0.3, 1.0), "Relative sizes for absorption.")
    sparsity: float = setting(0.5, "Magnitude-pruning sparsity of the compressed model.")
    jacobian_tokens: int = setting(512, "Tokens (first windows) for the Jacobian power iteration.")
    jacobian_iterations: int = setting(12, "Power-iteration steps of the Jacobian gain.")
    boots: int = setting(2000, "Bootstrap resamples of the correlation intervals.")


def _drift_dict(d: DriftTracks) -> dict:
    return {"eps": d.eps, "scaling": d.scaling, "aggregate": d.aggregate, "tokenwise": d.tokenwise}


def _drift_from(d: dict) -> DriftTracks:
    return DriftTracks(d["eps"], d["scaling"], np.asarray(d["aggregate"]), np.asarray(d["tokenwise"]))


def predicted_drift(eps: float, rho: np.ndarray) -> np.ndarray:
    """Predicted drift ``sqrt(V_t) A_t = eps * prod_{s >= t} rho_s`` of an injection at each layer (L,)."""
    return eps * np.cumprod(np.asarray(rho, np.float64)[::-1])[::-1]


def run_profile_study(model, run: RunFolder, settings: ProfileSettings = ProfileSettings(), *,
                      progress: Progress = SILENT, mesh: Mesh | None = None) -> dict:
    """Run (or resume) the contraction profile of ``model`` in ``run``; return the summary.

    ``mesh`` splits the clean forward passes by windows and the rho profiles by samples over devices
    (:mod:`rhojax.sharding`); the other stages run on every device of the mesh as placed."""
    s = settings
    absorption_eps = tuple(sorted(set(s.absorption_eps) | {s.eps}))
    split = statistics_split(s.text)
    config, params = model.config, model.params
    L = config.num_layers
    windows = corpus_windows(model.tokenizer, s.text, split, s.tokens, s.seq_len)
    n_drift = max(1, min(len(windows), s.drift_tokens // s.seq_len))
    n_jac = max(1, min(len(windows), s.jacobian_tokens // s.seq_len))
    key = jax.random.key(s.seed)
    keys = {name: jax.random.fold_in(key, i) for i, name in enumerate(["profile", "jacobian", "compressed"])}
    with progress.stage("contraction profile: clean states, dense and pruned", 2) as update:
        hidden = clean_states(config, params, windows, mesh)
        update(1)
        compressed = compress_sites(params, lambda w, t, kind: magnitude_prune(w, s.sparsity), config.site_kinds)
        hidden_c = clean_states(config, compressed, windows, mesh)
        update(2)

    stages = 2 + len(s.sweep_eps) + 2 * len(absorption_eps) + 4
    with progress.stage("contraction profile (layer steps)", stages * L) as update:
        done = 0

        def step(n: int = L) -> None:
            nonlocal done
            done += n
            update(done)

        def at(base: int) -> Callable[[int], None]:
            return lambda n: update(base + n)

        prof = run.part("profile", lambda: rho_profile(config, params, hidden, keys["profile"], eps=s.eps,
                                                       samples=s.samples, mesh=mesh).to_dict())
        step()
        sweep = [run.part(f"sweep_{e:g}", lambda e=e: rho_profile(
            config, params, hidden, keys["profile"], eps=e, samples=s.sweep_samples, linearised=False,
            mesh=mesh).to_dict()) for e in s.sweep_eps]
        step(len(s.sweep_eps) * L)
        gain = run.part("jacobian", lambda: jacobian_gain(config, params, hidden[:, :n_jac], keys["jacobian"],
                                                          iterations=s.jacobian_iterations).to_dict())
        step()
        scalings = ("aggregate", "tokenwise")
        n_runs = len(scalings) * len(absorption_eps)
        batched = run.part("drift", lambda b=done: {sc: [_drift_dict(d) for d in tracks] for sc, tracks in
            injection_drifts(config, params, hidden[:, :n_drift], keys["profile"], eps_values=absorption_eps,
                             samples=s.drift_samples, scalings=scalings,
                             on_layer=lambda n: update(b + n * n_runs)).items()})
        runs = {sc: [_drift_from(d) for d in batched[sc]] for sc in scalings}
        step(n_runs * L)
        comp = run.part("compression_profile", lambda: compression_profile(
            config, params, compressed, hidden).to_dict())
        step()
        comp_drift = run.part("compression_drift", lambda b=done: dict(zip(("aggregate", "tokenwise"),
            compression_drift(config, params, compressed, hidden[:, :n_drift], on_layer=at(b)), strict=True)))
        step()
        prof_c = run.part("compressed_profile", lambda: rho_profile(
            config, compressed, hidden_c, keys["compressed"], eps=s.eps, samples=s.samples,
            linearised=False, mesh=mesh).to_dict())
        step()
        drift_c = _drift_from(run.part("compressed_drift", lambda b=done: _drift_dict(injection_drift(
            config, compressed, hidden_c[:, :n_drift], keys["compressed"], eps=s.eps, samples=s.drift_samples,
            on_layer=at(b)))))
        step()

    return assemble_profile(s, L, len(windows), n_drift, prof, sweep, gain, runs, comp, comp_drift, prof_c, drift_c)


def assemble_profile(s: ProfileSettings, L: int, windows: int, n_drift: int, prof: dict, sweep: list[dict],
                     gain: dict, runs: dict[str, list[DriftTracks]], comp: dict, comp_drift: dict, prof_c: dict,
                     drift_c: DriftTracks) -> dict:
    """The profile summary from its finished parts: drift predictions, correlations, absorption."""
    corr = lambda x, y: correlation(x, y, seed=s.seed, boots=s.boots)  # noqa: E731
    main = next(r for r in runs["aggregate"] if r.eps == s.eps)
    main_tok = next(r for r in runs["tokenwise"] if r.eps == s.eps)
    measured = main.measured()
    rho_dense, rho_dense_tok = np.asarray(prof["rho"]), np.asarray(prof["token_rho_mean"])
    rho_comp = np.asarray(prof_c["rho"])
    comp_pred = np.asarray(comp["output_error"]) * np.append(np.cumprod(rho_dense[::-1])[::-1][1:], 1.0)
    reversed_depth = np.arange(L, 0, -1)
    drift = {
        "eps": s.eps,
        "windows": n_drift,
        "samples": s.drift_samples,
        "predicted": predicted_drift(s.eps, rho_dense),
        "predicted_tokenwise_rho": predicted_drift(s.eps, rho_dense_tok),
        "measured": measured,
        "measured_tokenwise": main.measured("tokenwise"),
        "measured_samples": main.aggregate[:, :, -1],
        "correlation": corr(predicted_drift(s.eps, rho_dense), measured),
        "correlation_tokenwise_rho": corr(predicted_drift(s.eps, rho_dense_tok), measured),
        "tokenwise": {
            "note": "token-wise scaled injections, token-wise tracks (mean over non-BOS tokens), token-wise rho",
            "measured": main_tok.measured("tokenwise"),
            "correlation": corr(predicted_drift(s.eps, rho_dense_tok), main_tok.measured("tokenwise")),
            "layer_index_spearman": corr(reversed_depth, main_tok.measured("tokenwise"))["spearman"],
        },
        "layer_index_spearman": corr(reversed_depth, measured)["spearman"],
    }
    post = {
        "compression": f"magnitude pruning, scope=matrix, sparsity {s.sparsity}, every block matrix",
        "measured": drift_c.measured(),
        "predicted_dense_rho": predicted_drift(s.eps, rho_dense),
        "predicted_compressed_rho": predicted_drift(s.eps, rho_comp),
        "correlation_dense_rho": corr(predicted_drift(s.eps, rho_dense), drift_c.measured()),
        "correlation_compressed_rho": corr(predicted_drift(s.eps, rho_comp), drift_c.measured()),
        "profile": prof_c,
    }
    compression = {
        **comp,
        "measured_drift": comp_drift["aggregate"],
        "measured_drift_tokenwise": comp_drift["tokenwise"],
        "predicted_drift": comp_pred,
        "correlation": corr(comp_pred, comp_drift["aggregate"]),
    }
    lyapunov = {
        "v0": s.eps**2,
        "predicted": lyapunov_trajectory(rho_dense, s.eps**2),
        "measured": main.aggregate[0].mean(axis=0) ** 2,
    }
    return {
        "settings": dataclasses.asdict(s),
        "split": statistics_split(s.text),
        "windows": windows,
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
