"""docs/results/models.md: the sensitivity maps, the CFI and the contraction profiles of the packaged models."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .common import HEADER, findings_note, interval, md_table, num

#: The models of the cross-model page, in the order of their size.
MODELS = ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


MLP_KINDS = {"up", "gate", "down"}


def model_maps(data: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """``{model: {map label: {map, dense_ppl, scored_tokens, settings, source}}}`` from the findings files
    (``findings_<model>``, one sweep per method) and the main-job reports (``analyze_<model>_<budget>``);
    a findings map replaces a report's map of the same label."""
    found: dict[str, dict[str, dict]] = {}
    for name, d in sorted(data.items(), key=lambda kv: not kv[0].startswith("analyze_")):
        if name.startswith("analyze_"):
            sweeps = [(d["model"]["model"], d["sensitivity"], d["settings"]["sensitivity"])]
        elif name.startswith("findings_"):
            sweeps = [(d["model"], st, st["settings"]) for k, st in d["studies"].items() if k.startswith("sweep_")]
        else:
            continue
        for model, sweep, settings in sweeps:
            for label, m in sweep["maps"].items():
                found.setdefault(model, {})[label] = {"map": m, "dense_ppl": sweep["dense_ppl"], "source": name,
                                                      "scored_tokens": sweep["scored_tokens"], "settings": settings}
    return found


def model_studies(data: dict[str, dict], model: str) -> dict:
    """A model's contraction profile (with its settings) and depth rows, from its findings file or else its
    main-job report (same section format)."""
    out: dict = {}
    found = [(name, d) for name, d in sorted(data.items()) if name.startswith(f"analyze_{model}_")]
    if found:
        name, r = found[-1]
        out["profile"] = {**r["profile"], "settings": r["settings"]["profile"], "source": name}
        out["depth"] = {"rows": r["depth"]["rows"], "scored_tokens": r["depth"]["scored_tokens"], "source": name}
    findings = data.get(f"findings_{model}")
    if findings is not None and "profile" in findings["studies"]:
        out["profile"] = {**findings["studies"]["profile"], "source": f"findings_{model}"}
    if findings is not None and "depth" in findings["studies"] and "depth" not in out:
        d = findings["studies"]["depth"]
        out["depth"] = {"rows": d["rows"], "scored_tokens": d["scored_tokens"], "source": f"findings_{model}"}
    return out


def _tau_or_na(a: Sequence[float], b: Sequence[float]) -> str:
    from rhojax.sensitivity.summary import kendall_tau

    return num(kendall_tau(a, b), 3) if len(a) >= 2 else "n/a (fewer than two models)"


def interaction(m: dict) -> float:
    """``log10(all-at-once ratio) / (CFI * sites)`` of one map: the all-at-once log damage over the sum of
    the single-site log damages (1 = additive)."""
    return math.log10(m["uniform_ratio"]) / (m["cfi"] * m["sites"])


def cfi_agreement(maps: dict[str, dict[str, dict]]) -> list[dict]:
    """Per map label: the models with a complete map, Kendall's tau-b between their CFI and their
    all-at-once ratio, and the exact one-sided p-value of that tau (the chance that a random order of the
    models agrees at least as well), from :func:`model_maps`."""
    from scipy import stats

    rows = []
    for label in sorted({label for m in maps.values() for label in m}):
        have = [(model, maps[model][label]["map"]) for model in MODELS if label in maps.get(model, {})
                and maps[model][label]["map"]["cfi"] is not None and maps[model][label]["map"]["uniform_ratio"]]
        cfi, ratio = [m["cfi"] for _, m in have], [m["uniform_ratio"] for _, m in have]
        p = (float(stats.kendalltau(cfi, ratio, alternative="greater", method="exact").pvalue)
             if len(have) >= 3 else None)
        rows.append({"label": label, "models": have, "tau": _tau_or_na(cfi, ratio), "p": p})
    return rows


def _claims(model: str, maps: dict[str, dict], profile: dict | None, depth: dict | None) -> list[tuple[str, str, str]]:
    """The papers' claims, checked on one model's data: (claim, verdict, the line that says whether it holds
    here), the verdict one of holds, fails, not measured."""
    out = []
    for label, m in maps.items():
        top = [h["kind"] for h in m["map"]["hierarchy"][:3]]
        verdict = "holds" if set(top) == MLP_KINDS else "fails"
        out.append((f"MLP above attention ({label})", verdict,
                    f"- Hierarchy ({label}): the three most sensitive kinds are {', '.join(top)}; MLP matrices "
                    f"above attention: **{verdict}**."))
    if {"magnitude@0.5", "wanda@0.5"} <= set(maps):
        mag, wanda = maps["magnitude@0.5"]["map"]["spread"], maps["wanda@0.5"]["map"]["spread"]
        verdict = "holds" if wanda < mag else "fails"
        out.append(("Wanda spread below magnitude's", verdict,
                    f"- Spread: magnitude {num(mag, 3)}x, Wanda {num(wanda, 3)}x; activation-aware scores shrink "
                    f"the spread: **{verdict}**. The papers' ~600x magnitude spread is not approached by one "
                    "matrix at 50% here."))
    if profile is not None:
        sink = profile["sink_rho"]
        passing = sum(abs(r - 1) <= 0.01 for r in sink)
        gap = sum(abs(a - b) / a for a, b in zip(profile["rho"], profile["token_rho_mean"], strict=True)) / len(sink)
        out.append(("BOS sink: aggregate and token-wise rho differ", "holds" if gap > 0.05 else "fails",
                    f"- BOS sink: a perturbation of the BOS position passes a layer unchanged (rho at BOS within "
                    f"1% of 1) in {passing} of {len(sink)} layers; the aggregate and token-wise rho differ by "
                    f"{num(100 * gap, 3)}% of the aggregate rho on average per layer, so the two readings "
                    + ("**differ** here (over 5%), as the sink claim predicts." if gap > 0.05 else
                       "**agree** here (within 5%).")))
        d = profile["drift"]["aggregate"]
        verdict = "holds" if d["spearman_ci"][0] > 0 else "fails"
        out.append(("rho predicts drift", verdict,
                    f"- Drift prediction: the product of the layers' aggregate rho orders the measured drift of an "
                    f"injection by layer with Spearman {num(d['spearman'], 3)} {interval(d['spearman_ci'], 3)}: "
                    + ("**holds** (interval above 0)." if verdict == "holds" else
                       "**fails** here (interval includes 0).")))
    rows = {(r["criterion"], r["k"]): r for r in (depth or {}).get("rows", [])}
    ks = sorted(k for c, k in rows if c == "bi" and ("rho_ascending", k) in rows)
    if ks:
        better = [k for k in ks if rows[("rho_ascending", k)]["ratio"] < rows[("bi", k)]["ratio"]]
        out.append(("rho removes better than BI", "holds" if len(better) == len(ks) else "fails",
                    "- rho vs Block Influence for layer removal (perplexity ratio after physical removal, "
                    f"{num(depth['scored_tokens'])} tokens, `{depth['source']}`): "
                    + "; ".join(f"k = {k}: rho x{num(rows[('rho_ascending', k)]['ratio'], 3)}, BI "
                                f"x{num(rows[('bi', k)]['ratio'], 3)}" for k in ks)
                    + "; rho removes better than BI at " + (f"k = {better}" if better else "no k") + "."))
    else:
        out.append(("rho removes better than BI", "not measured",
                    "- rho vs Block Influence for layer removal: not measured on this model (no depth study here)."))
    return out


def claims_table(data: dict[str, dict], maps: dict[str, dict[str, dict]]) -> str:
    """Every paper claim (rows) on every model (columns): holds, fails or not measured."""
    verdicts = {}
    for model in MODELS:
        studies = model_studies(data, model)
        if model in maps or studies.get("profile") is not None:
            for claim, verdict, _ in _claims(model, maps.get(model, {}), studies.get("profile"),
                                             studies.get("depth")):
                verdicts.setdefault(claim, {})[model] = verdict
    rows = [[claim, *(by_model.get(model, "not measured") for model in MODELS)]
            for claim, by_model in sorted(verdicts.items())]
    return md_table(["claim", *(f"`{model}`" for model in MODELS)], rows)


def _order(maps: Sequence[tuple[str, dict]], key: str) -> str:
    return " < ".join(f"`{model}`" for model, _ in sorted(maps, key=lambda x: x[1][key]))


def models_page(data: dict[str, dict]) -> str:
    """docs/results/models.md: CFI and its yardstick over four models, per-model hierarchy, spread, profile."""
    maps = model_maps(data)
    labels = sorted({label for m in maps.values() for label in m})
    lines = ["# Four models: sensitivity maps, the CFI and contraction profiles", "", HEADER, "",
             "Each model's per-matrix map compresses one matrix at a time (everything else dense) at 50% sparsity "
             "with magnitude and with Wanda scores; the CFI is the mean log10 perplexity ratio over all its "
             "matrices, and its yardstick is the perplexity ratio with every matrix compressed at once. The CFI "
             "is validated by Kendall's tau between the two over models, per (method, level), never mixing "
             "methods. Definitions: [docs/definitions.md](../definitions.md). The sweeps use the `quick` budget's "
             "settings on every model (so they are alike), which makes every number below indicative: few "
             "evaluation windows, intervals in the data files.", "",
             "## CFI and the all-at-once yardstick", ""]
    rows = []
    for model in MODELS:
        for label in labels:
            cell = maps.get(model, {}).get(label)
            if cell is None:
                rows.append([f"`{model}`", label, "not measured", "", "", "", "", ""])
                continue
            m, st = cell["map"], cell["settings"]
            rows.append([f"`{model}`", label, num(m["cfi"]), f"x{num(m['uniform_ratio'])}",
                         num(interaction(m), 3), num(cell["dense_ppl"]),
                         f"{num(cell['scored_tokens'])} ({st['tokens'] // st['seq_len']} x {st['seq_len']}), "
                         f"calibration {num(st['calib_tokens'])}, seed {st['seed']}", f"`{cell['source']}`"])
    lines += [md_table(["model", "map", "CFI", "all matrices at once", "interaction", "dense ppl",
                        "evaluation tokens", "data"], rows), "",
              "The interaction is the log of the all-at-once ratio over the sum of the single-matrix log ratios "
              "(`log10(all at once) / (CFI x matrices)`): 1 when the matrices' damage adds up in log perplexity, "
              "above 1 when compressing them together costs more than the sum of compressing each alone. The CFI, "
              "a mean of single-matrix damage, cannot see it, so a CFI can order models as the yardstick does "
              "only where the interaction is alike across them.", "",
              "A row \"not measured\" has no complete map in the data yet: `.venv/bin/python scripts/model_findings.py "
              "MODEL` measures it with the same settings (resumable; `--studies sweep_wanda` for one map).", ""]
    tau_rows = [[r["label"], str(len(r["models"])), r["tau"], "n/a" if r["p"] is None else num(r["p"], 3),
                 _order(r["models"], "cfi"), _order(r["models"], "uniform_ratio")] for r in cfi_agreement(maps)]
    lines += ["Agreement of the CFI with its yardstick over models (Kendall tau-b; 1 = the CFI orders the models "
              "as compressing every matrix at once does). The p-value is exact and one-sided: the chance that "
              "the models in a random order agree at least as well. With four models the smallest possible "
              "p-value is 1/24 (0.042), reached only by a perfect order, so this table can refute a useful CFI "
              "more easily than confirm one:", "",
              md_table(["map", "models", "Kendall tau", "p (exact, one-sided)", "order by CFI",
                        "order by all-at-once ratio"], tau_rows), ""]
    lines += ["## The papers' claims on each model", "",
              "Each verdict is explained, with its numbers, under its model below; \"rho removes better than BI\" "
              "holds only where it does at every number of removed layers measured.", "",
              claims_table(data, maps), "", "## Per model", ""]
    for model in MODELS:
        findings = data.get(f"findings_{model}")
        studies = model_studies(data, model)
        profile = studies.get("profile")
        if model not in maps and profile is None:
            lines += [f"### `{model}`", "", "Not measured yet.", ""]
            continue
        lines += [f"### `{model}`", ""]
        own = maps.get(model, {})
        reference = maps.get(MODELS[0], {})
        for label, cell in own.items():
            m = cell["map"]
            medians = {h["kind"]: h["median_ratio"] for h in m["hierarchy"]}
            transfer = ""
            if model != MODELS[0] and label in reference:
                ref = {h["kind"]: h["median_ratio"] for h in reference[label]["map"]["hierarchy"]}
                kinds = sorted(set(ref) & set(medians))
                transfer = (f" Kind order vs `{MODELS[0]}`: Kendall tau "
                            f"{_tau_or_na([medians[k] for k in kinds], [ref[k] for k in kinds])}.")
            lines.append(f"- {label}: hierarchy {' > '.join(medians)} (median ratios "
                         f"{', '.join(num(v, 4) for v in medians.values())}); spread {num(m['spread'], 3)}x, most "
                         f"sensitive layer {m['max_site'][0]} `{m['max_site'][1]}` x{num(m['max_ratio'], 4)}."
                         + transfer)
        if profile is not None:
            amplifying = [t for t, ci in enumerate(profile["rho_ci"]) if ci[0] > 1]
            d = profile["drift"]
            lines.append(f"- Contraction profile ({profile['layers']} layers, {profile['windows']} window(s) of "
                         f"{profile['settings']['seq_len']} tokens, K = {profile['settings']['samples']}, eps = "
                         f"{num(profile['eps'])}): mean rho {num(sum(profile['rho']) / profile['layers'], 4)} "
                         f"aggregate, {num(sum(profile['token_rho_mean']) / profile['layers'], 4)} token-wise; "
                         f"layers amplifying with 95% confidence (aggregate): {amplifying or 'none'}; predicted vs "
                         f"measured drift Spearman {num(d['aggregate']['spearman'], 3)} "
                         f"{interval(d['aggregate']['spearman_ci'], 3)} aggregate, "
                         f"{num(d['tokenwise']['spearman'], 3)} {interval(d['tokenwise']['spearman_ci'], 3)} "
                         f"token-wise (`{profile['source']}`).")
        lines += ["", "Paper claims on this model:", "",
                  *(line for _, _, line in _claims(model, own, profile, studies.get("depth"))), ""]
        if findings is not None:
            lines += [findings_note(findings, f"findings_{model}"), ""]
    return "\n".join(lines)
