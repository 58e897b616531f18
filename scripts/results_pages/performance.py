"""docs/performance.md's rendered sections: the benchmarks and the layer-streaming memory."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .common import ROOT, gib, md_table, num, source_note


def performance_renderers() -> dict[str, Callable[[dict[str, dict]], str]]:
    """The benchmark sections of docs/performance.md (rendered by ``benchmarks.report``)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.report import benchmarks_section, profile_cost_section

    return {"benchmarks": benchmarks_section, "profile_cost": profile_cost_section}


def layer_streaming(data: dict[str, dict]) -> str:
    """docs/performance.md's streaming section: peak resident memory streamed vs whole, and the expected size."""
    d = data.get("streaming_memory")
    if d is None:
        return "Not measured yet (`python scripts/measure_streaming.py`)."
    s, z, runs = d["settings"], d["sizes"], d["runs"]
    names = {"ppl": "perplexity", "profile": f"rho profile (one eps, K = {s['samples']})"}
    rows = []
    for analysis, c in d["comparisons"].items():
        whole, streamed = runs[f"{analysis}_whole"], runs[f"{analysis}_streamed"]
        rows.append([names.get(analysis, analysis), gib(whole["peak_bytes"]), gib(streamed["peak_bytes"]),
                     f"{c['streamed_over_whole']:.2f}x", gib(c["expected_streamed_bytes"]),
                     f"{c['streamed_over_expected']:.2f}x", f"{c['streamed_above_runtime_over_resident']:.2f}x",
                     num(c["max_relative_difference"], 2),
                     f"{num(streamed['seconds'], 3)} s / {num(whole['seconds'], 3)} s"])
    table = md_table(["analysis", "peak, whole model", "peak, streamed", "streamed / whole",
                      "expected streamed (runtime + resident)", "streamed / expected",
                      "(streamed - runtime) / resident", "max relative difference of results",
                      "time streamed / whole"], rows)
    windows = s["tokens"] // s["seq_len"]
    return "\n".join([
        f"`{s['model']}` in float32, {windows} window(s) of {s['seq_len']} tokens: the whole model is "
        f"{gib(z['model_bytes'])}; resident while streaming are the embeddings, final norm and head "
        f"({gib(z['top_bytes'])}), one block of {z['layers']} ({gib(z['block_bytes'])}) and the activations "
        f"(states {gib(z['states_bytes'])}, one window's logits {gib(z['logits_bytes'])}). The runtime alone "
        f"(Python, JAX, the tokenizer, no model) peaks at {gib(runs['runtime']['peak_bytes'])}. The whole model "
        "is restored by `load_model` from the converted-params cache; the streamed one is opened by `open_blocks`, "
        "each block read from the GGUF file and dequantised when needed. Peaks are each process's `ru_maxrss`; the "
        "runs were made one after the other, on a shared machine (the times are not a speed comparison).", "",
        table, "",
        source_note(d, "streaming_memory"),
    ])
