"""The plan cost model: the loss curve fit, the combination rule on planted cases, single-site measurements
against a direct computation, and additivity in the small-error limit against a direct measurement."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.compress import calibration_stats
from rhojax.errors import RhojaxError
from rhojax.eval.perplexity import window_nll_sums
from rhojax.models import ModelConfig, forward, init_params
from rhojax.plan.actions import REMOVE, Plan, apply_plan, prune, rtn
from rhojax.plan.cost_model import (
    LossCurve,
    effective_drift,
    fit_depth_exponent,
    fit_loss_curve,
    interpolate_level,
    predict,
    propagated_drift,
)
from rhojax.plan.measure import measure_layer
from rhojax.plan.optimize import Block, Group, solve_layered
from rhojax.sensitivity.sweep import dense_reference

CONFIG = ModelConfig("llama", vocab_size=61, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=48, norm_eps=1e-5)


def test_fit_recovers_a_planted_power_law_and_clips_the_exponent():
    d = np.array([0.01, 0.03, 0.1, 0.3])
    curve = fit_loss_curve(d, 0.7 * d**2.5)
    assert curve.p == pytest.approx(2.5) and curve.kappa == pytest.approx(0.7)
    assert fit_loss_curve(d, 0.7 * d**9).p == 4.0
    assert fit_loss_curve(d[:1], np.array([0.5])).p == 2.0
    with pytest.raises(RhojaxError, match="loss curve needs"):
        fit_loss_curve(d, -d)
    np.testing.assert_allclose(curve.drift(curve.loss(d)), d)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0, 1.6])
def test_fit_depth_exponent_recovers_a_planted_exponent(gamma):
    """Sites with local errors and amplifications drawn independently, their loss increases planted as
    ``0.4 * (eps * A^gamma)^1.8`` times log-normal noise: the fit recovers gamma and p."""
    rng = np.random.default_rng(0)
    eps, amp = np.exp(rng.uniform(-5, -1, 60)), np.exp(rng.uniform(-3, 2, 60))
    noise = np.exp(rng.normal(0, 0.2, 60))
    fit = fit_depth_exponent(eps, amp, 0.4 * (eps * amp**gamma) ** 1.8 * noise)
    assert fit.best.gamma == pytest.approx(gamma, abs=0.05) and fit.best.p == pytest.approx(1.8, abs=0.1)
    assert fit.profile.gamma == 1.0 and fit.sites == 60
    # gamma = 1 is rejected exactly when the planted exponent is not 1
    assert (fit.p_value < 0.05) == (gamma != 1.0)
    assert fit_depth_exponent(eps, amp, 0.4 * (eps * amp**gamma) ** 1.8 * noise).chosen().gamma == (
        fit.best.gamma if gamma != 1.0 else 1.0)
    exact = fit_depth_exponent(eps, amp, 0.4 * (eps * amp**gamma) ** 1.8).best
    assert (exact.gamma, exact.p, exact.kappa) == pytest.approx((gamma, 1.8, 0.4), abs=1e-6)
    # the drift the curve is applied to carries the exponent
    rho = np.array([0.5, 2.0, 0.8])
    np.testing.assert_allclose(propagated_drift(np.array([0.1, 0.1]), np.array([0, 2]), rho, gamma),
                               [0.1 * (2.0 * 0.8) ** gamma, 0.1])


def test_depth_exponent_f_test_against_an_independent_regression():
    """The p-value restated: ordinary least squares of ``log dL`` on ``(1, log eps, log A)`` against the fit on
    ``(1, log eps + log A)``, F-test with (1, n - 3) degrees of freedom (scipy)."""
    from scipy import stats

    rng = np.random.default_rng(3)
    eps, amp = np.exp(rng.uniform(-5, -1, 25)), np.exp(rng.uniform(-2, 2, 25))
    dl = 0.5 * (eps * amp**0.8) ** 2.0 * np.exp(rng.normal(0, 0.5, 25))
    y, x, a = np.log(dl), np.log(eps), np.log(amp)
    full = np.c_[np.ones(25), x, a]
    rss_full = np.sum((y - full @ np.linalg.lstsq(full, y, rcond=None)[0]) ** 2)
    one = np.c_[np.ones(25), x + a]
    rss_one = np.sum((y - one @ np.linalg.lstsq(one, y, rcond=None)[0]) ** 2)
    expected = stats.f.sf((rss_one - rss_full) / (rss_full / 22), 1, 22)
    fit = fit_depth_exponent(eps, amp, dl)
    assert 1.0 <= fit.best.p <= 4.0 and 1.0 <= fit.profile.p <= 4.0  # no clipping in this draw
    assert fit.p_value == pytest.approx(expected, rel=0.05, abs=1e-3)  # gamma on a 0.01 grid


def test_depth_exponent_keeps_the_profile_when_depth_cannot_be_told_apart():
    eps = np.array([0.01, 0.03, 0.1, 0.3])
    one_amplification = fit_depth_exponent(eps, np.full(4, 2.0), 0.7 * (2.0 * eps) ** 2)
    assert one_amplification.p_value == 1.0 and one_amplification.best.gamma == 1.0
    assert fit_depth_exponent(eps, np.full(4, 2.0), 0.7 * (2.0 * eps) ** 2).chosen().p == pytest.approx(2.0)
    few = fit_depth_exponent(eps[:3], np.array([1.0, 3.0, 0.2]), eps[:3] ** 2)  # three sites: too few to test
    assert few.p_value == 1.0 and few.chosen().gamma == 1.0


def test_combination_rule_adds_the_single_site_increases():
    deltas = np.array([0.01, 0.02, 0.04])
    for p in (1.2, 2.0, 3.0):
        curve = LossCurve(0.5, p)
        drifts = curve.drift(deltas)
        assert predict(curve, drifts[:1]) == pytest.approx(deltas[0])  # one site: its own measurement
        assert predict(curve, drifts) == pytest.approx(deltas.sum())  # many: the sum, whatever the exponent
        assert predict(curve, drifts) == pytest.approx(float(np.sum(0.5 * drifts**p)))  # closed form


def test_planted_amplified_and_absorbed_sites_are_ranked_by_the_profile():
    """Two sites with the same local error: one in a block whose output is amplified downstream (rho 3, 3), one
    whose output is absorbed (rho 0.3). The cost model ranks the amplified one costlier, and the optimizer,
    allowed to compress only one of them, compresses the absorbed one."""
    rho = np.array([1.0, 0.3, 0.3, 1.0, 3.0, 3.0])  # A_{t+1}: layer 0 -> 0.3*0.3*1*3*3 = 0.81, layer 3 -> 9
    drift = propagated_drift(np.array([0.05, 0.05]), np.array([0, 3]), rho)
    np.testing.assert_allclose(drift, [0.05 * 0.81, 0.05 * 9])
    curve = LossCurve(1.0, 2.0)
    assert predict(curve, drift[1:]) > predict(curve, drift[:1])
    dense, compressed = (2, 0.0), (1, None)
    blocks = [Block((Group(np.array([dense[0], compressed[0]]), np.array([0.0, d**2])),)) for d in drift]
    choice, _ = solve_layered(blocks, capacity=3)
    assert choice == [[1], [0]]
    # a measured loss increase overrides the propagated drift of its site, read back through the curve
    measured = effective_drift(curve, drift, np.array([np.nan, 4.0]))
    np.testing.assert_allclose(measured, [drift[0], 2.0])  # sqrt(4 / kappa)


def test_interpolation_in_level():
    assert interpolate_level([0.3, 0.7, 0.5], [1.0, 5.0, 2.0], 0.6) == pytest.approx(3.5)
    with pytest.raises(RhojaxError, match="outside the measured levels"):
        interpolate_level([0.3, 0.5], [1.0, 2.0], 0.8)


@pytest.fixture(scope="module")
def tiny():
    params = init_params(CONFIG, jax.random.PRNGKey(1), scale=0.3)
    windows = np.random.default_rng(1).integers(0, CONFIG.vocab_size, (4, 12)).astype(np.int32)
    stats = calibration_stats(CONFIG, params, windows, hessians=True)
    return params, windows, stats, dense_reference(CONFIG, params, windows, batch_size=2)


def direct_delta(params, windows, config=CONFIG):
    """Mean NLL increase per scored token of a whole model run from the embedding (no cached states)."""
    scored = windows.shape[0] * (windows.shape[1] - 1)
    return float(window_nll_sums(config, params, windows).sum()) / scored


def test_single_site_measurements_match_a_direct_computation(tiny):
    params, windows, stats, reference = tiny
    base = direct_delta(params, windows)
    cands = [("q", prune("wanda", 0.5)), ("down", rtn(3, 16)), ("block", REMOVE)]
    records = measure_layer(CONFIG, params, reference, 1, cands, stats, end_to_end=[True, True, False],
                            window_batch=2, config_batch=2)
    assert [r["action"] for r in records] == ["wanda@0.5", "rtn@3b/g16", "remove"]
    assert records[2]["delta_loss"] is None
    _, hidden = forward(CONFIG, params, jnp.asarray(windows), return_hidden=True)
    h1, h2 = np.asarray(hidden[1], np.float64), np.asarray(hidden[2], np.float64)
    assert records[2]["local_error"] == pytest.approx(np.linalg.norm(h1 - h2) / np.linalg.norm(h2), rel=1e-5)
    for (kind, action), record in zip(cands[:2], records[:2], strict=True):
        w = params["blocks"][kind]["w"]
        changed = {**params, "blocks": {**params["blocks"], kind: {"w": w.at[1].set(
            action.compress(w[1], stats.site(1, kind)))}}}
        assert record["delta_loss"] == pytest.approx(direct_delta(changed, windows) - base, rel=1e-3, abs=1e-6)
        _, h = forward(CONFIG, changed, jnp.asarray(windows), return_hidden=True)
        h2c = np.asarray(h[2], np.float64)
        assert record["local_error"] == pytest.approx(np.linalg.norm(h2c - h2) / np.linalg.norm(h2), rel=1e-4)
    # the last block's removal: the suffix is empty and the loss is read from h_{L-1}
    last = measure_layer(CONFIG, params, reference, 2, [("block", REMOVE)], stats, end_to_end=[True])[0]
    config, removed = apply_plan(CONFIG, params, Plan((2,), {}), windows)
    assert last["delta_loss"] == pytest.approx(direct_delta(removed, windows, config) - base, rel=1e-4)


def test_additivity_in_the_small_error_limit_against_a_direct_measurement(tiny):
    """Two 8-bit sites in different layers: the combined loss increase measured directly equals the sum of the
    single-site increases (the cost model at p = 2) to within 5%."""
    params, windows, stats, reference = tiny
    base = direct_delta(params, windows)
    sites = [(0, "v", rtn(8, None)), (2, "up", rtn(8, None))]
    singles = [measure_layer(CONFIG, params, reference, layer, [(kind, a)], stats, end_to_end=[True])[0]["delta_loss"]
               for layer, kind, a in sites]
    blocks = dict(params["blocks"])
    for layer, kind, a in sites:
        blocks[kind] = {"w": blocks[kind]["w"].at[layer].set(a.compress(blocks[kind]["w"][layer], None))}
    combined = direct_delta({**params, "blocks": blocks}, windows) - base
    assert all(abs(s) > 1e-6 for s in singles)
    assert combined == pytest.approx(sum(singles), rel=0.05)  # what the rule predicts at p = 2


def test_layer_marginals_are_each_layers_predicted_share():
    from rhojax.plan.cost_model import LossCurve, layer_marginals

    curve = LossCurve(kappa=2.0, p=2.0)  # additive: a layer adds 2 * (sum of its squared drifts)
    got = layer_marginals(curve, {0: [0.1, 0.2], 3: [0.3]})
    assert got == pytest.approx({0: 2.0 * (0.01 + 0.04), 3: 2.0 * 0.09})
    steep = layer_marginals(LossCurve(kappa=1.0, p=4.0), {0: [0.5], 1: [1.0, 1.0]})  # sites add: kappa * d^p
    assert steep == pytest.approx({0: 0.5**4, 1: 2.0})


def test_correction_factors_raise_the_layers_that_hurt_most_beyond_prediction():
    from rhojax.plan.cost_model import correction_factors

    predicted = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 0.0}
    measured = {0: 1.5, 1: 4.0, 2: 0.5, 3: -0.2, 4: 0.3}
    assert correction_factors(predicted, measured, 2) == pytest.approx({4: 10.0, 1: 4.0})  # largest first
    assert correction_factors(predicted, measured, 5) == pytest.approx({4: 10.0, 1: 4.0, 0: 1.5})  # never < 1
    assert correction_factors({0: 1.0}, {0: 50.0}, 3) == {0: 10.0}  # capped
    assert correction_factors({0: 0.0}, {0: 0.0}, 3) == {}


def test_anchor_factor_is_the_clipped_ratio_and_interpolates_in_level():
    from rhojax.plan.cost_model import anchor_factor, level_factor

    assert anchor_factor(0.3, 0.9) == pytest.approx(1 / 3)
    assert anchor_factor(5.0, 0.1) == 10.0 and anchor_factor(-0.1, 0.5) == 0.1  # a method neither forbidden nor free
    assert anchor_factor(0.2, 0.0) == 10.0
    assert level_factor([0.7, 0.3], [2.0, 1.0], 0.4) == pytest.approx(1.25)  # 1 + (0.4 - 0.3) / 0.4
    assert level_factor([0.3, 0.7], [1.0, 2.0], 0.9) == 2.0 and level_factor([0.3, 0.7], [1.0, 2.0], 0.1) == 1.0
    assert level_factor([0.5], [0.4], 0.3) == 0.4  # one anchor speaks for every level of its family
