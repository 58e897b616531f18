"""docs/results.md: the headlines, each with its interval and a link to its page."""

from __future__ import annotations

from .analysis import analysis
from .common import HEADER, comparison_note, interval, num, overlap, pct
from .models import cfi_agreement, model_maps


def index(data: dict[str, dict]) -> str:
    """docs/results.md: the headlines, each with its interval and a link to its page."""
    lines = ["# Results", "", HEADER, "",
             "Measured results of rhojax. Every number on these pages is rendered from a committed data file in "
             "[`docs/results/data/`](results/data/) that records its command, commit, package versions, settings, "
             "seed, machine and wall time (`scripts/render_results.py`; a test fails when a page and its data "
             "disagree). Definitions: [docs/definitions.md](definitions.md).", "",
             "- [Foundation: perplexity against transformers, and the join rule](results/foundation.md)",
             "- [Contraction profile](results/propagation.md)",
             "- [Per-matrix sensitivity](results/sensitivity.md)",
             "- [Zero-shot accuracy](results/eval.md)",
             "- [Formal bounds: Coq proofs, site bounds, checker](results/bounds.md)",
             "- [Depth pruning and sparsity allocation](results/depth_allocation.md)",
             "- [Structure](results/structure.md)",
             "- [Recovery after compression (`rhojax heal`)](results/heal.md)",
             "- [Budgeted compression plans (`rhojax plan`)](results/plan.md)",
             "- [Four models: sensitivity maps, the CFI and contraction profiles](results/models.md)", "",
             "## Headlines", ""]
    ref = data.get("reference_perplexity")
    if ref is not None:
        c = ref["cases"]
        bias = c["spliced_before_the_fix"]["rhojax"] / c["blank_line"]["rhojax"] - 1
        lines.append(f"- **Perplexity matches transformers.** On {num(c['blank_line']['scored_tokens'])} evaluation "
                     f"tokens, rhojax {num(c['blank_line']['rhojax'])} "
                     f"{interval(c['blank_line']['rhojax_ci'])} vs transformers {num(c['blank_line']['transformers'])}"
                     f" ({pct(c['blank_line']['relative_difference'], 3)}; each tokenizes the text itself). The "
                     f"protocol used before the tokenization fix read {num(c['spliced_before_the_fix']['rhojax'])} "
                     f"on the same articles ({pct(bias, 1)}"
                     "): every perplexity published before the fix was biased upwards and has been re-measured or "
                     "withdrawn. [details](results/foundation.md)")
    found = analysis(data)
    if found is not None:
        _, r = found
        p, a = r["profile"], r["answer"]
        d = p["drift"]
        lines.append(f"- **Predicted vs measured drift** (budget `{r['budget']}`): Spearman "
                     f"{num(d['aggregate']['spearman'], 3)} {interval(d['aggregate']['spearman_ci'], 3)} in the "
                     f"aggregate reading, {num(d['tokenwise']['spearman'], 3)} "
                     f"{interval(d['tokenwise']['spearman_ci'], 3)} token-wise; after 50% magnitude pruning, dense "
                     f"rho {num(d['after_compression_dense_rho']['spearman'], 3)} vs re-measured rho "
                     f"{num(d['after_compression_compressed_rho']['spearman'], 3)} (intervals overlap: "
                     + ("yes" if overlap(d["after_compression_dense_rho"]["spearman_ci"],
                                          d["after_compression_compressed_rho"]["spearman_ci"]) else "no")
                     + "). [details](results/propagation.md)")
        m = a["matrices"]
        lines.append(f"- **Matrices** at {m['map']}: {m['safe']} of {m['sites']} safe, {m['unsafe']} unsafe, "
                     f"{m['inconclusive']} inconclusive at this budget; most sensitive: "
                     + ", ".join(f"layer {w['layer']} {w['kind']} x{num(w['ratio'], 3)} {interval(w['ci'], 3)}"
                                 for w in m["worst"][:3]) + ". [details](results/sensitivity.md)")
        rec = a["removal"]["recommended"]
        best = a["removal"]["best_per_k"]
        note = comparison_note(r["depth"]["scored_tokens"])
        lines.append(f"- **Layer removal**{note}: " + "; ".join(
            f"k = {b['k']}: best {b['criterion']} x{num(b['ratio'], 3)} {interval(b['ratio_ci'], 3)}" for b in best)
            + (f". Recommended at this budget: k = {rec['k']}." if rec else ". No tested removal is within the "
               "report's threshold.") + " [details](results/depth_allocation.md)")
        for b in a["allocation"]["best"]:
            vs = b.get("vs_uniform")
            lines.append(f"- **Allocation**{note}, {b['method']} at {b['sparsity']:.0%}: best schedule "
                         f"`{b['schedule']}` "
                         + (f"x{num(vs['ratio'], 3)} of uniform {interval(vs['ci'], 3)}: "
                            + ("better beyond the noise." if vs["beyond_noise"] else "**within the noise**.")
                            if vs else "(uniform itself).") + " [details](results/depth_allocation.md)")
        b = r.get("bounds", {})
        if "sites" in b:
            lines.append(f"- **Bounds**: site bounds {num(b['sites']['configurations'])} configurations, "
                         f"{b['sites']['violations']} violations; checker "
                         f"{num(b.get('checker', {}).get('configurations'))} configurations, "
                         f"{b.get('checker', {}).get('violations', 'n/a')} violations. [details](results/bounds.md)")
    agreement = [r for r in cfi_agreement(model_maps(data)) if r["p"] is not None]
    if agreement:
        lines.append("- **The CFI across models** (does the mean single-matrix damage order models as compressing "
                     "every matrix at once does?): " + "; ".join(
                         f"{r['label']}: Kendall tau {r['tau']} over {len(r['models'])} models (exact one-sided p "
                         f"{num(r['p'], 3)})" for r in agreement)
                     + ". " + ("No map's agreement is beyond chance at this number of models."
                               if all(r["p"] >= 0.05 for r in agreement) else
                               "Beyond chance (p < 0.05) for: "
                               + ", ".join(r["label"] for r in agreement if r["p"] < 0.05) + ".")
                     + " [details](results/models.md)")
    lines.append("")
    return "\n".join(lines)
