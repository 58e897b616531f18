"""Markdown tables of a benchmark data file (``docs/results/data/benchmarks_<machine>.json``).

:func:`render_tables` is what ``python -m benchmarks`` prints; :func:`benchmarks_section` and
:func:`profile_cost_section` render every data file into docs/performance.md (called by
``scripts/render_results.py``). Nothing here measures; every number comes from the data.
"""

from __future__ import annotations

#: Goal name prefix -> (target, whether higher or lower is better). Ratios are rhojax over the baseline
#: in speed (baseline seconds / rhojax seconds), so above 1 means rhojax is faster.
_GOAL_KINDS = {
    "fraction of matmul peak": (0.85, "higher"),
    "vs PyTorch batched": (1.0, "higher"),
    "vs PyTorch same algorithm": (1.0, "higher"),
    "fraction of the prefix-caching FLOP ceiling": (0.9, "higher"),
    "vs PyTorch with cached prefix": (1.0, "higher"),
    "default profile / rho profile alone": (3.0, "lower"),
}


class _Goals(dict):
    """Targets by goal name: the name's suffix after ``: `` (or the whole name) selects the kind."""

    def __missing__(self, name: str):
        for kind, target in _GOAL_KINDS.items():
            if name.endswith(kind):
                return target
        raise KeyError(name)


GOALS = _Goals()


def _s(seconds) -> str:
    return "n/a" if seconds is None else (f"{seconds:.3g} s" if seconds < 120 else f"{seconds / 60:.3g} min")


def _x(ratio) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def title(data: dict) -> str:
    """Which machine, model and dtype a data file measured."""
    m, model = data["provenance"]["machine"], data["model"]
    torch = data.get("torch")
    side = (f"PyTorch {torch['version']} on {torch['device']} ({torch['threads']} threads)" if torch
            else "no PyTorch baselines (--no-torch)")
    return (f"{model['name']} ({model['family']}, {model['layers']} layers, {model['dtype']}) on "
            f"{m['cores']} cores of {m['cpu']}, JAX backend {m['backend']} ({', '.join(sorted(set(m['devices'])))}); "
            f"{side}")


def measurements(data: dict) -> str:
    """One row per measured ratio: the work, rhojax's time, the baseline's time, the ratio."""
    rows = []
    peak = data.get("peak")
    if peak:
        best = max(peak["shapes"], key=lambda r: r["gflops"])
        rows.append([f"matmul peak (best of {len(peak['shapes'])} GEMMs, {best['m']}x{best['k']}x{best['n']})",
                     f"{peak['gflops']:.4g} GFLOP/s", "", ""])
    for r in data.get("forward", []):
        ours = f"{_s(r['rhojax_seconds'])}, {r['rhojax_gflops']:.4g} GFLOP/s"
        if "fraction_of_peak" in r:
            ours += f" ({r['fraction_of_peak']:.0%} of peak)"
        ours += f"; compile {_s(r['rhojax_compile_seconds'])}"
        theirs = (f"{_s(r['torch_seconds'])}, {r['torch_gflops']:.4g} GFLOP/s (PyTorch batched)"
                  if "torch_seconds" in r else "n/a")
        rows.append([f"forward with logits, {r['windows']} x {r['seq_len']} tokens", ours, theirs,
                     _x(r.get("speedup_vs_torch"))])
    prof = data.get("profile")
    if prof:
        what = f"{prof['windows']} x {prof['seq_len']} tokens, K = {prof['samples']}, eps {prof['eps']:g}"
        for r in prof["rows"]:
            rows.append([f"rho profile ({r['versions']}), clean states included, {what}",
                         f"{_s(r['rhojax_seconds'])}; compile {_s(r['rhojax_compile_seconds'])}",
                         f"{_s(r.get('torch_seconds'))} (PyTorch, same algorithm)" if "torch_seconds" in r else "n/a",
                         _x(r.get("speedup_vs_torch"))])
        hooks = prof.get("hooks")
        if hooks:
            rows.append([f"rho profile (aggregate) vs the hook-based baseline (a full forward per layer per sample), "
                         f"{what}", _s(prof["rows"][0]["rhojax_seconds"]),
                         f"{_s(hooks['torch_seconds'])} (PyTorch hooks)", _x(hooks["speedup"])])
    sw = data.get("sweep")
    if sw:
        what = (f"{sw['configurations']} sites ({sw['method']}) in layers {', '.join(map(str, sw['layers']))}, "
                f"{sw['windows']} x {sw['seq_len']} tokens")
        ours = f"{_s(sw['rhojax_seconds'])}; compile {_s(sw['rhojax_compile_seconds'])}"
        by_batch = sw.get("seconds_by_config_batch")
        if by_batch:
            ours += (f"; sites per block pass: best {sw['config_batch']} of "
                     + ", ".join(f"{b}: {_s(s)}" for b, s in by_batch.items()))
        if "torch_seconds" in sw:
            rows.append([f"sweep, {what}", ours, f"{_s(sw['torch_seconds'])} (PyTorch, cached prefix)",
                         _x(sw["speedup_vs_torch"])])
        rows.append([f"sweep vs a full forward per site (rhojax), {what}", ours,
                     f"{_s(sw['naive_seconds'])} (full forward each)",
                     f"{_x(sw['speedup_vs_naive'])} of a {_x(sw['flop_ceiling'])} FLOP ceiling "
                     f"({sw['fraction_of_ceiling']:.0%})"])
    return _table(["work", "rhojax", "baseline", "speed ratio"], rows) if rows else ""


def goals_table(data: dict) -> str:
    """Each goal with its target, the measured value, and where missed by how much and why."""
    rows = []
    for g in data.get("goals", []):
        fmt = (lambda v: f"{v:.0%}") if "fraction" in g["goal"] else _x
        rows.append([g["goal"], ("at least " if GOALS[g["goal"]][1] == "higher" else "at most ") + fmt(g["target"]),
                     fmt(g["measured"]), "met" if g["met"] else f"missed: {g['gap']}; {g['note']}".rstrip("; ")])
    return _table(["goal", "target", "measured", "result"], rows)


def profile_cost_table(data: dict) -> str | None:
    """The default profile study part by part, against its rho part."""
    cost = data.get("profile_cost")
    if not cost:
        return None
    s = cost["settings"]
    rows = [[name, _s(seconds), f"{seconds / cost['rho_seconds']:.2f}x"] for name, seconds in cost["parts"]]
    rows.append(["whole study (clean states, pruning and assembly included)", _s(cost["total_seconds"]),
                 f"{cost['ratio']:.2f}x"])
    w = cost["work_window_block_passes"]
    work = (f"Perturbed block passes (one window each): rho {w['rho']:,} (+ {w['rho_jvp']:,} jvp), eps sweep "
            f"{w['sweep']:,}, drift and absorption {w['drift']:,}.")
    quick = " (reduced by --quick)" if data["settings"].get("quick") else " (the study's defaults)"
    head = (f"Settings{quick}: {s['tokens']:,} tokens in {s['seq_len']}-token windows, K = {s['samples']}; drift on "
            f"{s['drift_tokens']} tokens, K = {s['drift_samples']}, {len(s['absorption_eps'])} absorption eps. "
            f"Times include compilation (as a user's run does).")
    return "\n\n".join([head, _table(["part", "time", "/ rho part"], rows), work])


def render_tables(data: dict) -> str:
    """The whole printout of one data file."""
    parts = [title(data), measurements(data), goals_table(data), profile_cost_table(data)]
    return "\n\n".join(part for part in parts if part)


def _files(all_data: dict[str, dict]) -> list[tuple[str, dict]]:
    return [(name, d) for name, d in sorted(all_data.items()) if name.startswith("benchmarks_")]


def _source(name: str, data: dict) -> str:
    p = data["provenance"]
    out = (f"Data: `docs/results/data/{name}.json`, from `{p['command']}` at commit `{p['commit'][:12]}`, "
           f"{_s(data['wall_seconds'])} wall.")
    for u in data.get("updates", []):
        q = u["provenance"]
        out += (f" Re-measured later in a run of its own: {', '.join(u['sections'])}, from `{q['command']}` at "
                f"commit `{q['commit'][:12]}`, {_s(u['wall_seconds'])} wall.")
    return out


def benchmarks_section(all_data: dict[str, dict]) -> str:
    """Every benchmark data file's measurements and goals (docs/performance.md, ``benchmarks`` region)."""
    files = _files(all_data)
    if not files:
        return "No benchmark data yet: run `python -m benchmarks` on an idle machine."
    out = []
    for name, data in files:
        out += [f"### {name.removeprefix('benchmarks_')}", "", title(data) + "."]
        out += [part for part in (measurements(data), goals_table(data), _source(name, data)) if part for part in
                ("", part)] + [""]
    return "\n".join(out).rstrip("\n")


def profile_cost_section(all_data: dict[str, dict]) -> str:
    """The default profile's cost part by part (docs/performance.md, ``profile_cost`` region)."""
    out = []
    for name, data in _files(all_data):
        table = profile_cost_table(data)
        if table:
            out += [f"### {name.removeprefix('benchmarks_')}", "", table, "", _source(name, data), ""]
    if not out:
        return "No data yet: run `python -m benchmarks` with a packaged model (`--only profile_cost` for this part)."
    return "\n".join(out).rstrip("\n")
