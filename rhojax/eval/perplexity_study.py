"""Perplexity of a model on the evaluation split, with a bootstrap interval over windows.

:class:`PerplexitySettings` holds the defaults of ``rhojax ppl`` and of the main job's perplexity
step: at least 16k evaluation tokens, so that comparisons of a few percent are outside the noise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jax.sharding import Mesh

from rhojax.data.windows import DEFAULT_SEQ_LEN, corpus_windows
from rhojax.eval.intervals import perplexity_ci
from rhojax.eval.perplexity import perplexity_from_nll, streamed_window_nll_sums, window_nll_sums
from rhojax.io.stream import as_stream
from rhojax.progress import SILENT, Progress
from rhojax.settings import StreamSettings, setting


@dataclasses.dataclass(frozen=True)
class PerplexitySettings(StreamSettings):
    """Text, token budget and batching of a perplexity measurement."""

    text: str = setting("wiki", "Corpus name (wiki, lambada, news; evaluation split) or a text file.")
    tokens: int = setting(16384, "Token budget: windows = tokens // seq-len.")
    seq_len: int = setting(DEFAULT_SEQ_LEN, "Window length in tokens, BOS included.")
    batch_size: int = setting(4, "Windows per compiled call.")
    boots: int = setting(1000, "Bootstrap resamples of the interval over windows.")
    seed: int = setting(0, "Seed of the bootstrap.")


def run_perplexity_study(model, settings: PerplexitySettings = PerplexitySettings(), *,
                         progress: Progress = SILENT, mesh: Mesh | None = None) -> dict:
    """Perplexity of ``model`` on the evaluation split of ``settings.text``, with a 95% interval and the
    summed NLL of every window (for paired comparisons). A :class:`~rhojax.io.stream.BlockStream` (or
    ``settings.stream``) runs block by block; otherwise ``mesh`` splits each batch of windows over devices."""
    s = settings
    windows = corpus_windows(model.tokenizer, s.text, "evaluation", s.tokens, s.seq_len)
    stream = as_stream(model, s.stream)
    if stream is not None:
        with progress.stage(f"perplexity, streamed ({len(windows)} x {s.seq_len} tokens)",
                            model.config.num_layers) as update:
            nll = streamed_window_nll_sums(stream, windows, batch_size=s.batch_size, on_layer=update)
    else:
        with progress.stage(f"perplexity ({len(windows)} x {s.seq_len} tokens)", len(windows)) as update:
            nll = window_nll_sums(model.config, model.params, windows, batch_size=s.batch_size, on_batch=update,
                                  mesh=mesh)
    result = perplexity_from_nll(nll, s.seq_len)
    lo, hi = perplexity_ci(nll, s.seq_len - 1, boots=s.boots, seed=s.seed)
    return {"settings": dataclasses.asdict(s), **result.to_dict(), "ci": [lo, hi], "window_nll": np.asarray(nll)}
