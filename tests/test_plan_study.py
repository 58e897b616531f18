"""``rhojax plan`` end to end on a tiny random llama saved as a Hugging Face folder (SmolLM2's tokenizer, so the
real corpus windows are used), and the one-line errors of bad targets."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.errors import RhojaxError
from rhojax.eval.perplexity import perplexity
from rhojax.io.resolve import load_model
from rhojax.models.sites import get_site, set_site
from rhojax.plan import PlanSettings, anchored_table, check_feasible, drift_table, parse_target
from rhojax.plan.actions import Plan, apply_plan, dense_model_cost, prune
from rhojax.plan.choose import anchor_plan, plan_drifts
from rhojax.plan.cost_model import LossCurve, predict
from rhojax.plan.pack import load_packed, packed_bytes
from tests.test_depth_cli import tiny_folder  # noqa: F401 - the tiny random llama saved as an HF folder

BUDGET = ["--calib-tokens", "128", "--stats-tokens", "256", "--tokens", "128", "--seq-len", "64", "--samples", "2",
          "--bins", "2000", "--boots", "100", "--sparsities", "0.3,0.5,0.7", "--measured-sparsities", "0.3,0.7",
          "--rank-fractions", "0.125", "--bits", "4", "--methods", "wanda"]


def test_plan_command_plans_verifies_and_resumes(tmp_path, tiny_folder):  # noqa: F811
    out = tmp_path / "plan"
    args = ["plan", str(tiny_folder), "--target", "params=0.5", "--out", str(out), "--apply", "--closed-loop",
            "--baselines", "bi_removal,uniform_rtn,uniform_wanda", "--tasks", "arc_easy", "--task-limit", "4",
            "--anchors", "wanda@0.5", *BUDGET]
    result = CliRunner().invoke(app, [*args, "--save-model", "--save-packed"])
    assert result.exit_code == 0, result.output
    # the builds report progress layer by layer (4 layers; 3 baselines, one skipped, still counted)
    assert "[planned model: sequential calibration (layers)] done: 4/4" in result.output
    assert "[baselines at the same budget (layers)] done: 12/12" in result.output
    assert "[anchor wanda@0.5: sequential calibration (layers)] done: 4/4" in result.output
    data = json.loads((out / "plan.json").read_text())
    p = data["plan"]
    assert data["unit"] == "params" and p["budget_used"]["params"] <= 0.5
    assert len(p["sites"]) == 4 * 7 and p["action_counts"]
    # the prediction is the cost model's formula over the plan's effective drifts
    model = load_model(str(tiny_folder))
    settings = PlanSettings(target="params=0.5", sparsities=(0.3, 0.5, 0.7), measured_sparsities=(0.3, 0.7),
                            rank_fractions=(0.125,), bits=(4,), methods=("wanda",), tokens=128, seq_len=64,
                            calib_tokens=128, stats_tokens=256)
    parts = [json.loads((out / "parts" / f"sites_{layer}.json").read_text())["value"] for layer in range(4)]
    records = [r for part in parts for r in part]
    assert all(r["delta_loss"] is not None for r in records)  # delta_source measured: every candidate end to end
    assert not any(r["action"] == "wanda@0.5" for r in records)  # interpolated, not measured
    curve = LossCurve(**data["loss_curve"])
    raw = drift_table(model.config, settings.grid(), records, curve, np.asarray(data["rho"]), (0.3, 0.7))
    # the anchor: uniform Wanda 50% built with sequential calibration, its calibration loss measured here
    (anchor,) = data["anchors"]
    calibration, statistics = settings.plan_windows(model.tokenizer)
    uniform = anchor_plan(model.config, settings.grid(), prune("wanda", 0.5))
    built = apply_plan(model.config, model.params, uniform, statistics, batch_size=settings.batch_size)
    measured = np.log(perplexity(*built, calibration).perplexity / perplexity(model.config, model.params,
                                                                              calibration).perplexity)
    assert anchor["action"] == "wanda@0.5" and anchor["measured_delta_loss"] == pytest.approx(measured, rel=1e-4)
    assert anchor["predicted_delta_loss"] == pytest.approx(predict(curve, plan_drifts(model.config, uniform, raw)))
    # uniform Wanda 50% is the anchor's plan: scored once, under the anchor's name, and read back as the baseline
    evaluated = sorted(f.stem for f in (out / "parts").glob("eval_*"))
    assert any(n.startswith("eval_anchor_wanda_0.5_") for n in evaluated), evaluated
    assert not any(n.startswith("eval_uniform_wanda_") for n in evaluated), evaluated
    uniform_wanda = next(r for r in data["baselines"] if r["name"] == "uniform_wanda")
    assert uniform_wanda["measured_delta_loss_calibration"] == pytest.approx(measured, rel=1e-4)
    table, _ = anchored_table(model.config, settings.grid(), raw, curve, {prune("wanda", 0.5): measured})
    assert predict(curve, plan_drifts(model.config, uniform, table)) == pytest.approx(
        np.clip(measured, 0.1 * anchor["predicted_delta_loss"], 10 * anchor["predicted_delta_loss"]), rel=1e-4)
    assert predict(curve, plan_drifts(model.config, Plan.from_dict(p), table)) == pytest.approx(
        p["predicted_delta_loss"], rel=1e-4)
    assert Plan.from_dict(p).cost(model.config).params <= 0.5 * dense_model_cost(model.config).params
    # verification: perplexities with intervals, the baselines at the same budget (RTN cannot save params)
    assert p["perplexity_ci"][0] <= p["perplexity"] <= p["perplexity_ci"][1]
    arc = p["tasks"]["arc_easy"]
    assert arc["items"] == 4 and 0 <= p["mean_acc"] <= 1 and "mean_acc" in data["dense"]
    assert len(arc["correct"]) == 4 and sum(arc["correct"]) / 4 == pytest.approx(arc["acc"])  # paired per item
    # the same-run comparison with the plan chosen with gamma = 1 (the profile as is)
    profile, depth = data["profile_plan"], data["depth_exponent"]
    assert profile["loss_curve"]["gamma"] == 1.0 and 0.0 <= depth["p_value"] <= 1.0
    # the default (tested) keeps gamma = 1 unless the sites reject it, and then plans as the profile does
    assert data["loss_curve"]["gamma"] == (depth["best_gamma"] if depth["p_value"] < 0.05 else 1.0)
    assert profile["same_plan"] or depth["p_value"] < 0.05
    if not profile["same_plan"]:
        assert profile["fitted_vs_profile"] == pytest.approx(p["perplexity"] / profile["perplexity"], rel=1e-9)
        assert profile["budget_used"]["params"] <= 0.5
    # the same-run comparison with the plan chosen without the anchor
    unanchored = data["unanchored_plan"]
    if not unanchored["same_plan"]:
        ratio = p["perplexity"] / unanchored["perplexity"]
        assert unanchored["anchored_vs_unanchored"] == pytest.approx(ratio, rel=1e-9)
        assert unanchored["budget_used"]["params"] <= 0.5
    names = {r["name"]: r for r in data["baselines"]}
    assert "skipped" in names["uniform_rtn"] and len(names["bi_removal"]["removed_layers"]) == 2  # (4 - 2) / 4
    removal = [curve.loss(table[(t, "block", "remove")]) for t in names["bi_removal"]["removed_layers"]]
    assert names["bi_removal"]["predicted_delta_loss"] == pytest.approx(float(sum(removal)))  # baselines priced too
    # the saved model (HF safetensors, dense form) is the verified one: same evaluation perplexity
    saved = load_model(str(out / "model"))
    assert saved.config.num_layers == 4 - len(p["removed_layers"])
    windows = settings.evaluation_windows(saved.tokenizer)
    assert perplexity(saved.config, saved.params, windows).perplexity == pytest.approx(p["perplexity"], rel=1e-4)
    # the packed model differs only by bf16 storage (test_plan_pack) and is stored at the plan's bytes, except that
    # unstructured pruning stores the non-zeros the operator kept (2 bytes each), a few off n - round(s n)
    packed_config, packed_params = load_packed(out / "packed")
    assert packed_config == model.config.replace(num_layers=saved.config.num_layers)
    assert perplexity(packed_config, packed_params, windows).perplexity == pytest.approx(p["perplexity"], rel=1e-2)
    plan, kept = Plan.from_dict(p), [t for t in range(4) if t not in p["removed_layers"]]
    expected = 0.0
    for layer, kind in model.config.sites:
        action, shape = plan.action(layer, kind), model.config.site_shape(kind)
        if action.op == "prune":
            nonzero = int(np.count_nonzero(np.asarray(saved.params["blocks"][kind]["w"][kept.index(layer)])))
            expected += 2 * nonzero + shape[0] * shape[1] / 8
        else:
            expected += action.cost(shape).bytes
    assert packed_bytes(out / "packed") == expected
    # closed loop: each layer's contribution re-measured on the saved (planned) model, here independently
    loop = data["closed_loop"]
    kept = [t for t in range(4) if t not in p["removed_layers"]]
    calibration, statistics = settings.plan_windows(saved.tokenizer)
    assert calibration.shape == (2, 64) and statistics.shape == (4, 64)
    assert not {tuple(w) for w in calibration.tolist()} & {tuple(w) for w in statistics.tolist()}  # disjoint
    base = np.log(perplexity(saved.config, saved.params, calibration).perplexity)
    for layer, value in loop["measured_contribution"].items():
        layer, config = int(layer), saved.config
        if layer in p["removed_layers"]:  # the dense block put back between the kept (compressed) ones
            where = sorted([*kept, layer]).index(layer)
            put_back = lambda x, d, i=where, t=layer: jnp.insert(x, i, d[t], axis=0)  # noqa: E731
            blocks = jax.tree.map(put_back, saved.params["blocks"], model.params["blocks"])
            restored = {**saved.params, "blocks": blocks}
            config = config.replace(num_layers=config.num_layers + 1)
        else:
            restored = saved.params
            for kind in config.site_kinds:
                restored = set_site(restored, (kept.index(layer), kind), get_site(model.params, (layer, kind)))
        expected = base - np.log(perplexity(config, restored, calibration).perplexity)
        assert value == pytest.approx(expected, rel=1e-3, abs=1e-5)
    assert set(loop["measured_contribution"]) == {str(t) for t in p["removed_layers"]} | {
        str(s["layer"]) for s in p["sites"] if s["action"] not in ("dense", "remove")}
    assert set(loop["corrected_layers"]) <= set(loop["measured_contribution"])
    assert len(loop["corrected_layers"]) <= 6 and isinstance(loop["changed"], bool)
    if loop["changed"]:
        assert loop["replan"]["budget_used"]["params"] <= 0.5 and "perplexity" in loop["replan"]
    # a rerun resumes from parts/ and writes the same plan
    stamps = {f.name: f.stat().st_mtime_ns for f in (out / "parts").iterdir()}
    assert CliRunner().invoke(app, args).exit_code == 0
    assert {f.name: f.stat().st_mtime_ns for f in (out / "parts").iterdir()} == stamps
    assert json.loads((out / "plan.json").read_text())["plan"]["sites"] == p["sites"]


@pytest.mark.parametrize("target,message", [
    ("params=1.5", "must lie in \\(0, 1\\]"),
    ("bytes=-0.1", "must lie in \\(0, 1\\]"),
    ("watts=0.5", "UNIT one of params, flops, bytes"),
    ("params", "UNIT one of"),
    ("flops=half", "is not a number"),
])
def test_bad_targets_are_one_line_errors(target, message):
    with pytest.raises(RhojaxError, match=message) as e:
        parse_target(target)
    assert target in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(RhojaxError, match=message):
        PlanSettings(target=target)


def test_unknown_amplification_is_a_one_line_error():
    with pytest.raises(RhojaxError, match="amplification 'none': choose one of tested, fitted, profile"):
        PlanSettings(amplification="none")


def test_infeasible_target_names_the_fix(tiny_folder, tmp_path):  # noqa: F811
    config = load_model(str(tiny_folder)).config
    settings = PlanSettings(target="flops=0.6", nm=False, rank_fractions=(), removal=False)
    with pytest.raises(RhojaxError, match="flops=0.6.*infeasible.*keeps 1.000 of the dense flops"):
        check_feasible(config, settings.grid(), settings.target)
    check_feasible(config, PlanSettings(target="flops=0.6").grid(), "flops=0.6")  # 2:4, ranks, removal reach it
    result = CliRunner().invoke(app, ["plan", str(tiny_folder), "--target", "bytes=0.001", "--no-nm",
                                      "--out", str(tmp_path / "x"), *BUDGET])
    assert result.exit_code == 2 and "infeasible" in result.output and "Traceback" not in result.output


def test_every_removal_is_measured_end_to_end_and_kept_out_of_the_loss_curve_fit(tmp_path, tiny_folder):  # noqa: F811
    from rhojax.depth.prune import remove_layers
    from rhojax.plan import run_plan_study
    from rhojax.runs import RunFolder

    model = load_model(str(tiny_folder))
    settings = PlanSettings(target="params=0.5", delta_source="propagated", fit_sites=3, methods=("wanda",),
                            sparsities=(0.5,), measured_sparsities=(), nm=False, rank_fractions=(), bits=(),
                            tokens=128, seq_len=64, calib_tokens=128, stats_tokens=256, samples=2, bins=2000)
    summary = run_plan_study(model, tmp_path / "run", settings)  # a path: opened as the run folder
    run = RunFolder.for_study(tmp_path / "run", model, settings)  # the same settings reopen it
    calibration, _ = settings.plan_windows(model.tokenizer)
    dense = np.log(perplexity(model.config, model.params, calibration).perplexity)
    removals = run.read("removals_end_to_end")
    assert len(removals) == model.config.num_layers
    for layer, measured in enumerate(removals):  # independently: delete the block, score the calibration windows
        config, params = remove_layers(model.config, model.params, (layer,))
        expected = np.log(perplexity(config, params, calibration).perplexity) - dense
        assert measured["delta_loss"] == pytest.approx(expected, rel=1e-3, abs=1e-5)
    # the loss curve is fitted on the random sample only; every removal is known end to end besides
    assert len(summary["loss_curve_fit"]["delta_loss"]) == summary["fit_sites"] == 3
    fit, rho = summary["loss_curve_fit"], np.asarray(summary["rho"])
    amplification = np.array([np.prod(rho[t + 1:]) for t in fit["layer"]])  # A_{t+1}, restated
    np.testing.assert_allclose(fit["propagated_drift"],
                               np.asarray(fit["local_error"]) * amplification ** summary["loss_curve"]["gamma"])
    assert summary["end_to_end"] >= model.config.num_layers
