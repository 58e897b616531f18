"""The predicted loss increase of a plan, from single-site measurements combined through the contraction profile.

Notation: a plan compresses sites ``a`` (a matrix under an action, or a removed block) at layers ``t_a``.
For each site alone, on calibration windows, rhojax measures

- its *local error* ``eps_a = ||B'_t(h_t) - B_t(h_t)|| / ||h_{t+1}||`` (block ``t`` with the site
  compressed against the dense block, Frobenius over all tokens; a removed block has ``B'_t = id``);
- optionally its *loss increase* ``dL_a`` (mean next-token NLL, nats per token, the rest of the model dense).

The contraction profile ``rho_s`` (relative error out / relative error in of block ``s``) carries a relative
error written into ``h_{t+1}`` to the last state with the downstream amplification
``A_{t+1} = prod_{s > t} rho_s`` (:func:`rhojax.allocation.schedules.output_amplification`), so the site's
*propagated drift* is ``d_a = eps_a * A_{t_a + 1}^gamma``. ``gamma = 1`` trusts the profile as it is;
``gamma = 0`` ignores depth.

**Loss curve.** Single sites relate drift to loss by a power law ``dL = kappa * d^p``, fitted by least
squares in log-log on the sites measured both ways (``p`` clipped to ``[1, 4]``; it tends to 2 for small
errors, where the loss is quadratic around the dense model). With ``gamma`` fitted too
(:func:`fit_depth_exponent`) the model is ``log dL = log kappa + p log eps + p gamma log A``: the end-to-end
sites say how far the profile's amplification holds. On SmolLM2-135M the fit gives ``gamma`` 0.9-1.1 (the
profile holds); on Qwen2.5-Coder-0.5B, whose aggregate rho is below 1 in every layer, about 0.04: there the
product of rho says an error at layer 0 reaches the output 25x smaller than one at the last layer, and the
measured loss increases do not fall with depth that way.

**Combination rule.** Each site contributes an *effective drift* ``delta_a``: ``(dL_a / kappa)^(1/p)`` when its
loss increase was measured (the measurement, read back through the curve), else ``d_a``, and a predicted loss
increase ``kappa * delta_a^p``. The plan's predicted loss increase is their sum,

    dL(plan) = sum_a kappa * delta_a^p.

This is the small-error limit: around the dense model the loss is quadratic in the weight errors, and the
cross terms of independent sites' errors vanish in expectation, so single-site increases add. One site alone
is predicted at its own measured ``dL_a``. The sum is separable, which is what :mod:`rhojax.plan.optimize`
needs; what it leaves out (errors that compound or cancel between sites) is what the closed loop corrects.

An earlier rule added the drifts in quadrature and applied the curve to the total,
``kappa * (sum delta_a^2)^(p/2)``. It agrees with the sum at ``p = 2`` but, with the exponent fitted on
noisy single-site measurements (``p`` near 1 on SmolLM2 at 1,024 measurement tokens), it predicted a 210-site
plan at 0.04 nats/token where 0.56 was measured: the sum predicted 0.38.

**Uniform anchors.** Single sites are measured with the rest of the model dense and their compression fitted
to dense inputs. A whole model is built sequentially: each matrix is fitted to the inputs the compressed layers
before it produce, and an update such as SparseGPT's can absorb part of the upstream error. How much differs by
method and model: on Qwen2.5-Coder-0.5B the sum priced uniform 50% SparseGPT with per-channel masks at 3.4x its
measured loss increase, uniform Wanda at 0.6x. An *anchor* is one such uniform plan (an action on every matrix),
built with sequential calibration and measured on the calibration windows. Its ratio
``c = measured / predicted`` (:func:`anchor_factor`) rescales the predicted loss of every candidate of the same
method and kind of pruning (unstructured, or N:M), interpolated in level between that family's anchors
(:func:`level_factor`). The sum then reproduces every anchor's measured loss.

**Closed loop.** After a plan is built, each layer's contribution is measured on the planned model itself
(calibration loss with that layer's matrices restored to dense, the other compressed matrices kept) and set
against the predicted one (:func:`layer_marginals`). In the layers that hurt most beyond their prediction
(:func:`correction_factors`, ratio ``r_t > 1``), every candidate's predicted loss is multiplied by ``r_t``, so
they become dearer, and the plan is chosen again once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from rhojax.allocation.schedules import output_amplification
from rhojax.errors import RhojaxError

#: The fitted exponent is kept in this range.
P_RANGE: tuple[float, float] = (1.0, 4.0)

#: An anchor's factor is kept in this range: a uniform plan measured at (or below) no loss increase, or far above its
#: prediction, must not make a method free or forbidden.
ANCHOR_BOUNDS: tuple[float, float] = (0.1, 10.0)

#: The fitted depth exponent ``gamma`` is searched on this grid (0: depth ignored; 1: the profile as is).
GAMMA_GRID: np.ndarray = np.linspace(0.0, 2.0, 201)


@dataclasses.dataclass(frozen=True)
class LossCurve:
    """``dL = kappa * drift^p`` and its inverse; ``gamma``: the exponent of the amplification in the drift
    (:func:`propagated_drift`)."""

    kappa: float
    p: float
    gamma: float = 1.0

    def loss(self, drift) -> np.ndarray:
        """The predicted loss increase ``kappa * drift^p`` (same shape as ``drift``)."""
        return self.kappa * np.asarray(drift, np.float64) ** self.p

    def drift(self, delta_loss) -> np.ndarray:
        """The effective drift of a measured loss increase (negative increases count as none)."""
        return (np.maximum(np.asarray(delta_loss, np.float64), 0.0) / self.kappa) ** (1.0 / self.p)

    def to_dict(self) -> dict:
        """Plain data for plan.json: ``kappa``, ``p`` and ``gamma``."""
        return {"kappa": self.kappa, "p": self.p, "gamma": self.gamma}


def fit_loss_curve(drift: np.ndarray, delta_loss: np.ndarray) -> LossCurve:
    """Least-squares fit of ``log dL = log kappa + p log d`` over pairs with both values positive.

    ``p`` is clipped to :data:`P_RANGE` and ``kappa`` refitted for the clipped ``p``; with a single usable
    pair ``p = 2``.
    """
    d, dl = np.asarray(drift, np.float64), np.asarray(delta_loss, np.float64)
    keep = (d > 0) & (dl > 0) & np.isfinite(d) & np.isfinite(dl)
    if not keep.any():
        raise RhojaxError("the loss curve needs at least one site with a positive drift and loss increase: "
                          "measure more sites end to end (fit_sites) or more aggressive actions")
    x, y = np.log(d[keep]), np.log(dl[keep])
    p = 2.0 if keep.sum() < 2 or np.ptp(x) == 0 else float(np.polyfit(x, y, 1)[0])
    p = float(np.clip(p, *P_RANGE))
    return LossCurve(float(np.exp(np.mean(y - p * x))), p)


@dataclasses.dataclass(frozen=True)
class DepthExponentFit:
    """The loss curve with ``gamma`` at its best fit and at 1, and the F-test between them.

    ``p_value``: of ``F = (RSS_1 - RSS_best) / (RSS_best / (n - 3))`` under ``F(1, n - 3)``, the evidence that the
    end-to-end sites reject ``gamma = 1`` (``RSS``: squared log residuals over the ``n`` usable sites); 1.0 when
    ``gamma`` cannot be told apart (fewer than four usable sites, or all of them at one amplification)."""

    best: LossCurve
    profile: LossCurve
    p_value: float
    sites: int

    def chosen(self, alpha: float = 0.05) -> LossCurve:
        """The best fit where the sites reject ``gamma = 1`` at level ``alpha``, else the profile as is."""
        return self.best if self.p_value < alpha else self.profile

    def to_dict(self) -> dict:
        """Plain data for plan.json: the best ``gamma``, the F-test's ``p_value`` and the number of sites."""
        return {"best_gamma": self.best.gamma, "p_value": self.p_value, "sites": self.sites}


def fit_depth_exponent(local_error: np.ndarray, amplification: np.ndarray, delta_loss: np.ndarray) -> DepthExponentFit:
    """Fit ``log dL = log kappa + p log eps + p gamma log A`` and test it against ``gamma = 1``.

    ``local_error``, ``amplification`` (each site's ``A_{t+1}``) and ``delta_loss``: one value per site measured
    end to end. ``gamma`` minimises the squared log residual over :data:`GAMMA_GRID`, each candidate with its own
    :func:`fit_loss_curve` (``p`` clipped as there)."""
    eps, amp = np.asarray(local_error, np.float64), np.asarray(amplification, np.float64)
    dl = np.asarray(delta_loss, np.float64)
    keep = (eps > 0) & (amp > 0) & (dl > 0) & np.isfinite(eps) & np.isfinite(amp) & np.isfinite(dl)
    profile = fit_loss_curve(eps * amp, dl)
    n = int(keep.sum())
    if n < 4 or np.ptp(np.log(amp[keep])) < 1e-9:
        return DepthExponentFit(profile, profile, 1.0, n)
    x, a, y = np.log(eps[keep]), np.log(amp[keep]), np.log(dl[keep])

    def residual(gamma: float) -> tuple[float, LossCurve]:
        curve = dataclasses.replace(fit_loss_curve(np.exp(x + gamma * a), np.exp(y)), gamma=float(gamma))
        return float(np.sum((y - np.log(curve.kappa) - curve.p * (x + gamma * a)) ** 2)), curve

    rss_best, best = min((residual(g) for g in GAMMA_GRID), key=lambda r: r[0])
    rss_one = residual(1.0)[0]
    f = (rss_one - rss_best) / max(rss_best / (n - 3), 1e-300)
    return DepthExponentFit(best, profile, float(stats.f.sf(max(f, 0.0), 1, n - 3)), n)


def propagated_drift(local_error: np.ndarray, layers: np.ndarray, rho: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``d_a = eps_a * A_{t_a + 1}^gamma``: each site's local error carried to the last state by the profile."""
    amplification = output_amplification(rho)
    return np.asarray(local_error, np.float64) * amplification[np.asarray(layers, np.int64)] ** gamma


def effective_drift(curve: LossCurve, propagated: np.ndarray, delta_loss: np.ndarray | None) -> np.ndarray:
    """``delta_a``: from the measured loss increase where there is one (not NaN), else the propagated drift."""
    propagated = np.asarray(propagated, np.float64)
    if delta_loss is None:
        return propagated
    delta_loss = np.asarray(delta_loss, np.float64)
    return np.where(np.isnan(delta_loss), propagated, curve.drift(np.nan_to_num(delta_loss)))


def predict(curve: LossCurve, drifts: np.ndarray) -> float:
    """``dL(plan) = sum_a kappa * delta_a^p`` for the effective drifts of the plan's sites."""
    return float(np.sum(curve.loss(np.asarray(drifts, np.float64))))


def interpolate_level(levels: np.ndarray, values: np.ndarray, level: float) -> float:
    """Piecewise-linear interpolation of a site's measurement between the measured ``levels`` (no extrapolation)."""
    levels, values = np.asarray(levels, np.float64), np.asarray(values, np.float64)
    order = np.argsort(levels)
    levels, values = levels[order], values[order]
    if not levels[0] - 1e-12 <= level <= levels[-1] + 1e-12:
        raise RhojaxError(f"level {level} lies outside the measured levels {levels.tolist()}: measure it, or "
                          "plan inside the measured range")
    return float(np.interp(level, levels, values))


def anchor_factor(measured: float, predicted: float, bounds: tuple[float, float] = ANCHOR_BOUNDS) -> float:
    """``c = measured / predicted`` for a uniform anchor plan, clipped to ``bounds`` (the upper bound where the
    prediction is not positive)."""
    if predicted <= 0:
        return float(bounds[1])
    return float(np.clip(measured / predicted, *bounds))


def level_factor(levels, factors, level: float) -> float:
    """The factor at ``level``: piecewise-linear between a family's anchors (``levels``, ``factors``), constant
    beyond the outermost ones (one anchor: its factor at every level)."""
    levels, factors = np.asarray(levels, np.float64), np.asarray(factors, np.float64)
    order = np.argsort(levels)
    return float(np.interp(level, levels[order], factors[order]))


def layer_marginals(curve: LossCurve, drifts: dict[int, list[float]]) -> dict[int, float]:
    """Predicted loss increase each layer adds to a plan: ``dL(plan) - dL(plan without that layer's sites)``.

    ``drifts`` maps each layer to the effective drifts of its compressed sites."""
    every = [d for ds in drifts.values() for d in ds]
    total = predict(curve, every)
    return {layer: total - predict(curve, [d for other, ds in drifts.items() if other != layer for d in ds])
            for layer in drifts}


def correction_factors(predicted: dict[int, float], measured: dict[int, float], layers: int,
                       ceiling: float = 10.0) -> dict[int, float]:
    """``r_t = measured_t / predicted_t`` (at most ``ceiling``) for the ``layers`` layers whose measured
    contribution exceeds the predicted one most; a layer with a non-positive prediction and a positive
    measurement counts as ``ceiling``.

    Only under-predictions are corrected. A plan is chosen where the predictions are low, so its errors lean
    that way (the winner's curse); and a layer that cost less than predicted says nothing reliable about its
    more aggressive actions, which a lowered cost would invite (on SmolLM2, lowering three layers to 0.1x
    raised the re-plan's perplexity 2.2x)."""
    ratios = {}
    for layer, pred in predicted.items():
        meas = measured[layer]
        if meas <= 0 or (pred > 0 and meas <= pred):
            continue
        ratios[layer] = float(min(ceiling, meas / pred)) if pred > 0 else ceiling
    ranked = sorted(ratios, key=lambda layer: -ratios[layer])
    return {layer: ratios[layer] for layer in ranked[:layers]}
