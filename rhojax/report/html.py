"""``report.html``: the main job's report as one self-contained page (figures embedded, no network).

The page opens with the answer ("where is compression safe?"), each statement linking to the section
that holds its evidence; then one section per study with its tables and figures. Everything shown is
read from ``report.json`` and the PNG files it names; nothing is computed here.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d232a}
h1{font-size:1.7em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:right}
th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}
.answer{background:#f6fbf6;border:1px solid #9ac59a;padding:.6em 1.2em;border-radius:6px}
.bad{color:#a40e26}.good{color:#116329}.note{color:#57606a;font-size:.92em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #d0d7de}
nav a{margin-right:1em}
"""

#: Marks, once the page has loaded, whether every embedded figure decoded (read by the page test).
CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-figures', bad.length ? 'broken ' + bad.length : 'ok ' + imgs.length);
});
"""


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "n/a"
        return f"{value:.{digits}g}"
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, float | int) for v in value):
        return f"[{_fmt(value[0], digits)}, {_fmt(value[1], digits)}]"
    return html.escape(str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(root: Path, relative: str, caption: str) -> str:
    data = base64.b64encode((root / relative).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption class=note>{html.escape(caption)}</figcaption></figure>")


def only(layers: list[int], excluded: list[int]) -> list[int]:
    """``layers`` without those in ``excluded``."""
    return [t for t in layers if t not in excluded]


def _answer(report: dict) -> str:
    a = report["answer"]
    items = []
    if "matrices" in a:
        m = a["matrices"]
        s = a["settings"]
        items.append(
            f"<li><b>Matrices</b> (<a href='#sensitivity'>evidence</a>): at {html.escape(m['map'])}, "
            f"<span class=good>{m['safe']} of {m['sites']}</span> matrices are safe (perplexity +{s['safe_cost']:.0%} "
            f"at most, 95% upper bound), <span class=bad>{m['unsafe']}</span> are unsafe (more than "
            f"+{s['unsafe_cost']:.0%}, 95% lower bound), {m['inconclusive']} are inconclusive at this budget."
            + (f" Safe kinds at every layer: {', '.join(m['safe_kinds'])}." if m["safe_kinds"] else "")
            + "</li>")
        if m["worst"]:
            items.append("<li>Most sensitive matrices: " + ", ".join(
                f"layer {w['layer']} {html.escape(w['kind'])} (x{w['ratio']:.3g}, 95% {_fmt(w['ci'], 3)})"
                for w in m["worst"][:5]) + ".</li>")
    if "amplifying_layers" in a:
        amp = a["amplifying_layers"]
        items.append(f"<li><b>Layers that amplify errors</b> (<a href='#profile'>evidence</a>): rho above 1 with "
                     f"95% confidence in both readings at layers {amp['both'] or 'none'}; aggregate reading only: "
                     f"{only(amp['aggregate'], amp['both']) or 'none'}; token-wise only: "
                     f"{only(amp['tokenwise'], amp['both']) or 'none'}.</li>")
    for key in ("removal", "allocation", "bounds", "plan"):
        if key in a:
            items.append(f"<li>{a[key]['statement_html']}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _perplexity(report: dict, root: Path) -> str:
    p = report["perplexity"]
    card = report["model"]
    rows = [(k, v) for k, v in card.items() if k not in ("site_kinds",)]
    return (table(["model card", ""], rows)
            + f"<p>Perplexity <b>{p['perplexity']:.4f}</b> (95% interval {_fmt(p['ci'])}, bootstrap over "
              f"{p['windows']} windows) on {p['scored_tokens']:,} scored tokens of the evaluation split.</p>")


def _profile(report: dict, root: Path) -> str:
    p = report["profile"]
    rows = [(t, p["rho"][t], p["rho_ci"][t], p["token_rho_mean"][t], p["sink_rho"][t], p["rho_max"][t])
            for t in range(p["layers"])]
    d = p["drift"]
    corr = table(["predicted vs measured drift", "Spearman", "95% interval"],
                 [(k.replace("_", " "), v["spearman"], v["spearman_ci"]) for k, v in d.items()])
    return (f"<p>rho at eps = {p['eps']:g} on {p['windows']} windows ({html.escape(p['split'])} split); "
            "aggregate = Frobenius over all tokens (BOS included), token-wise = mean over non-BOS tokens.</p>"
            + corr + table(["layer", "rho aggregate", "95% interval", "rho token-wise", "rho at BOS", "rho max"],
                           rows))


def _sensitivity(report: dict, root: Path) -> str:
    s = report["sensitivity"]
    parts = [f"<p>Dense perplexity {s['dense_ppl']:.4f} on {s['scored_tokens']:,} evaluation tokens; "
             f"{s['configurations']} configurations, one matrix compressed at a time.</p>"]
    for label, m in s["maps"].items():
        parts.append(f"<h3>{html.escape(label)}</h3>")
        parts.append(table(["kind", "median ratio"], [(h["kind"], h["median_ratio"]) for h in m["hierarchy"]]))
        parts.append(table(["spread", "most sensitive", "least sensitive", "CFI", "all at once"],
                           [(m["spread"], f"layer {m['max_site'][0]} {m['max_site'][1]}",
                             f"layer {m['min_site'][0]} {m['min_site'][1]}", m["cfi"], m["uniform_ratio"])]))
    return "".join(parts)


def _eval(report: dict, root: Path) -> str:
    tasks = report["eval"]["tasks"]
    rows = [(name, t["items"], t["acc"], t["acc_stderr"], t.get("acc_norm")) for name, t in tasks.items()]
    return table(["task", "items", "accuracy", "stderr", "accuracy (length-normalised)"], rows)


def _bounds(report: dict, root: Path) -> str:
    b = report["bounds"]
    parts = []
    if "checker" in b:
        c = b["checker"]
        parts.append(f"<p>Bound checker: {c['configurations']:,} configurations ({c['finished']} of {c['levels']} "
                     f"levels), {c['evaluations']:,} evaluations, <b>{c['violations']} violations</b>.</p>")
        parts.append(table(["theorem", "evaluations", "violations", "median tightness"],
                           [(k, v["evaluations"], v["violations"], v["tightness"].get("median"))
                            for k, v in c["theorems"].items()]))
    if "sites" in b:
        st = b["sites"]
        parts.append(f"<p>Site bounds (block-output change when one matrix is compressed, levels "
                     f"{', '.join(st['levels'])}): {st['configurations']:,} configurations, "
                     f"<b>{st['violations']} violations</b>. Tightness = bound / measured change.</p>")
        parts.append(table(["kind", "median tightness", "95th percentile"],
                           [(k, v["tightness"].get("median"), v["tightness"].get("p95"))
                            for k, v in st["by_kind"].items()]))
        if st["spearman"]:
            parts.append(table(["level", "sites", "Spearman(bound, ppl ratio)", "Spearman(measured change, ppl ratio)"],
                               [(label, e["sites"], e["bound_vs_ppl_ratio"], e["measured_change_vs_ppl_ratio"])
                                for label, e in st["spearman"].items()]))
    return "".join(parts)


def _row_cells(r: dict) -> list:
    return [r["perplexity"], r["perplexity_ci"], r.get("ratio"), r.get("ratio_ci"), r.get("mean_acc")]


def _depth(report: dict, root: Path) -> str:
    d = report["depth"]
    rows = [("dense", 0, "", *_row_cells(d["dense"]))]
    rows += [(r["criterion"], r["k"], str(r["removed_layers"]), *_row_cells(r)) for r in d["rows"]]
    return (f"<p>Layers physically removed; perplexity on {d['scored_tokens']:,} evaluation tokens, 95% intervals by "
            "bootstrap over windows (ratio: paired with the dense model).</p>"
            + table(["criterion", "k", "removed", "perplexity", "95%", "ratio", "95%", "mean accuracy"], rows))


def _allocation(report: dict, root: Path) -> str:
    a = report["allocation"]
    rows = [(r["method"], f"{r['sparsity']:.0%}", r["schedule"], r["realised_mean"], *_row_cells(r)[:4])
            for r in a["rows"]]
    return table(["method", "target", "schedule", "realised sparsity", "perplexity", "95%", "ratio", "95%"], rows)


def _structure(report: dict, root: Path) -> str:
    st = report["structure"]
    h = st["headline"]
    best = h["best_single_replacement"]
    return (f"<p>Mean overlap of the top-variance and top-importance subspaces: {_fmt(h['mean_overlap'], 3)} "
            f"(chance {_fmt(h['chance_overlap'], 3)}). Best single-block linear replacement: block {best.get('start')} "
            f"(perplexity {_fmt(best.get('perplexity'))} against {_fmt(st['dense_perplexity'])} dense). At half depth "
            f"{_fmt(100 * h['settled_at_half_depth'], 3)}% of tokens have settled on the final prediction.</p>"
            + table(["block", "R^2 of the linear map"], list(enumerate(h["r2_single_block"]))))


def _plan(report: dict, root: Path) -> str:
    pl = report["plan"]
    rows = [("plan", pl["plan"]), *((r["name"], r) for r in pl["baselines"])]
    cells = [(name, "not run: " + r["skipped"], "", "", "", "") if "skipped" in r else
             (name, r["perplexity"], r["perplexity_ci"], r["ratio"], r["ratio_ci"],
              r["budget_used"][pl["unit"]]) for name, r in rows]
    plan = pl["plan"]
    return (f"<p>Target <b>{html.escape(pl['target'])}</b> of the dense block matrices. The plan removes blocks "
            f"{plan['removed_layers'] or 'none'} and compresses the rest with "
            + ", ".join(f"{html.escape(k)} x{v}" for k, v in plan["action_counts"].items())
            + f"; predicted loss increase {plan['predicted_delta_loss']:.3g} nats/token from {pl['candidates']:,} "
            f"single-site measurements. Baselines at the same budget, same evaluation windows "
            f"(dense perplexity {_fmt(pl['dense'].get('perplexity'))}).</p>"
            + table(["model", "perplexity", "95%", "ratio to dense", "95%", f"{pl['unit']} used"], cells))


SECTIONS: dict[str, tuple[str, Callable[[dict, Path], str]]] = {
    "perplexity": ("Model and perplexity", _perplexity),
    "profile": ("Contraction profile", _profile),
    "sensitivity": ("Sensitivity map", _sensitivity),
    "eval": ("Zero-shot accuracy", _eval),
    "bounds": ("Formal bounds", _bounds),
    "depth": ("Depth pruning", _depth),
    "allocation": ("Sparsity allocation", _allocation),
    "structure": ("Structure", _structure),
    "plan": ("Compression plan", _plan),
}


def render(report: dict, root: Path) -> str:
    """The page as a string; ``root`` is the folder the report's figure paths are relative to."""
    present = [(name, title, draw) for name, (title, draw) in SECTIONS.items() if name in report]
    nav = "".join(f"<a href='#{name}'>{html.escape(title)}</a>" for name, title, _ in present)
    body = [f"<h1>Where is compression safe? {html.escape(report['model']['model'])}</h1>",
            f"<p class=note>rhojax {html.escape(report['provenance']['rhojax'])}, budget "
            f"<b>{html.escape(report['budget'])}</b>, commit {html.escape(report['provenance']['commit'][:12])}; "
            f"{html.escape(report['provenance']['command'])}</p>",
            f"<nav>{nav}</nav>", "<h2 id=answer>Answer</h2><div class=answer>", _answer(report), "</div>"]
    for name, title, draw in present:
        body.append(f"<h2 id='{name}'>{html.escape(title)}</h2>")
        body.append(draw(report, root))
        for relative in report["figures"].get(name, []):
            body.append(figure(root, relative, f"{title}: {Path(relative).stem.replace('_', ' ')}"))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>rhojax report: "
            f"{html.escape(report['model']['model'])}</title><style>{STYLE}</style><script>{CHECK_SCRIPT}</script>"
            f"</head><body>{''.join(body)}</body></html>\n")


def write_html(path: str | Path, root: str | Path, report: dict) -> Path:
    """Render the report and write it atomically to ``path``."""
    path = Path(path)
    text = render(report, Path(root))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
