"""Markdown tables of a site-bound run (``rhojax bounds --sites``' ``site_summary.json``), for the results docs."""

from __future__ import annotations

BEGIN = "<!-- site-bounds:begin (rendered from {path} by rhojax.report.site_bounds_table) -->"
END = "<!-- site-bounds:end -->"


def _num(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def site_bounds_markdown(summary: dict, path: str) -> str:
    """The rendered block, between :data:`BEGIN` and :data:`END` markers naming the data file ``path``."""
    rows = summary["rows"]
    kinds = list(summary["by_kind"])
    machine = summary["machine"]
    lines = [
        BEGIN.format(path=path),
        f"Run: `{summary['command']}` at commit `{(summary['commit'] or 'unknown')[:12]}`; model "
        f"{summary['model']} ({summary['dtype']}); levels {', '.join(summary['levels'])}; "
        f"{summary['calibration_tokens']} calibration tokens ({summary['text']}, windows of {summary['seq_len']}); "
        f"seed {summary['seed']}; {machine['cpus']} CPUs (load average {machine['load_average'][0]:.1f}); "
        f"wall time {summary['wall_seconds'] / 60:.1f} min.",
        "",
        f"**{summary['configurations']} configurations, {summary['violations']} violations.**",
        "",
        "Tightness = site bound / measured change of the block output (Frobenius over the tokens), over all levels:",
        "",
        "| kind | configurations | violations | min | p05 | median | p95 | max | sublayer median |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in kinds:
        entry = summary["by_kind"][kind]
        t = entry["tightness"]
        violations = sum(not r["holds"] for r in rows if r["kind"] == kind)
        lines.append(f"| {kind} | {t['n']} | {violations} | "
                     + " | ".join(_num(t.get(q)) for q in ("min", "p05", "median", "p95", "max"))
                     + f" | {_num(entry['sublayer_tightness'].get('median'))} |")
    lines += ["", "Median tightness per level:", "", "| level | " + " | ".join(kinds) + " |",
              "| --- |" + " ---: |" * len(kinds)]
    for label, per_kind in summary["by_level"].items():
        lines.append(f"| {label} | " + " | ".join(_num(per_kind[k].get("median")) for k in kinds) + " |")
    if summary["spearman"]:
        lines += ["", f"Spearman correlation over sites with the perplexity ratio of the sweep `{summary['sweep']}`:",
                  "", "| level | sites | site bound | sublayer bound | measured block change | " + " | ".join(
                      f"within {k}" for k in kinds) + " |",
                  "| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(kinds)]
        for label, entry in summary["spearman"].items():
            lines.append(f"| {label} | {entry['sites']} | {_num(entry['bound_vs_ppl_ratio'])} | "
                         f"{_num(entry['sublayer_bound_vs_ppl_ratio'])} | "
                         f"{_num(entry['measured_change_vs_ppl_ratio'])} | "
                         + " | ".join(_num(entry["within_kind"].get(k)) for k in kinds) + " |")
    lines.append(END)
    return "\n".join(lines)


def rendered_block(markdown: str) -> str:
    """The block between the markers in a markdown document ('' when absent)."""
    start = markdown.find("<!-- site-bounds:begin")
    end = markdown.find(END)
    return "" if start < 0 or end < 0 else markdown[start:end + len(END)]
