"""Early exit: the logit lens through depth and oracle early-exit trade-offs.

The lens of state ``h_t`` is ``unembed(h_t)``: the final norm and the output matrix applied to an
intermediate state; at ``t = L`` it is the model's own prediction. For every scored position
(the prediction of token i+1 at position i, i = 0..T-2, as perplexity counts them):

- ``agreement[t]``: share of tokens whose lens top-1 at ``t`` equals the final top-1;
- ``settled[t]``: share whose lens top-1 equals the final top-1 at ``t`` *and every later state*
  (the easy-token fraction through depth: the prediction no longer changes after t);
- ``confident_agreement[tau][t]``: share that agree and whose lens top-1 probability is >= tau.

Exit policies give, per threshold tau, each token an exit state ``e`` (the first t whose condition
holds; ``L`` if none does), and are scored by the compute saving ``mean(1 - e / L)`` (share of block
passes skipped; the lens' own unembedding cost is not counted), the perplexity of the lens
distributions at ``e`` and the share of exits whose top-1 equals the final one:

- ``oracle``: agree with the final top-1 and confidence >= tau (needs the final answer: an upper bound);
- ``confidence``: confidence >= tau alone (deployable).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.models.transformer import unembed


@functools.partial(jax.jit, static_argnames="config")
def lens_statistics(
    config: ModelConfig, params: dict, hidden: jax.Array, tokens: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per state and scored position: lens top-1 id, its probability, and the NLL of the next token.

    ``hidden`` is ``(S, B, T, D)``, ``tokens`` ``(B, T)``; outputs are ``(S, B, T - 1)``. States are
    mapped one at a time so only one state's logits are alive.
    """

    def one_state(h):
        logp = jax.nn.log_softmax(unembed(config, params, h)[..., :-1, :].astype(jnp.float32), axis=-1)
        top1 = jnp.argmax(logp, axis=-1)
        confidence = jnp.exp(jnp.max(logp, axis=-1))
        nll = -jnp.take_along_axis(logp, tokens[..., 1:, None], axis=-1)[..., 0]
        return top1, confidence, nll

    return jax.lax.map(one_state, hidden)


@dataclasses.dataclass(frozen=True)
class LensRecord:
    """Lens statistics of ``n`` scored tokens at every state: arrays ``(S, n)``."""

    top1: np.ndarray
    confidence: np.ndarray
    nll: np.ndarray


def collect_lens(
    config: ModelConfig, params: dict, hidden: np.ndarray, windows: np.ndarray, batch_size: int = 2
) -> LensRecord:
    """Lens statistics of cached clean states ``(S, N, T, D)``, flattened to ``(S, N * (T - 1))``."""
    parts = []
    for start in range(0, len(windows), batch_size):
        sl = slice(start, start + batch_size)
        parts.append([np.asarray(a) for a in lens_statistics(config, params, jnp.asarray(hidden[:, sl]),
                                                            jnp.asarray(windows[sl]))])
    s = hidden.shape[0]
    top1, confidence, nll = (np.concatenate([p[i] for p in parts], axis=1).reshape(s, -1) for i in range(3))
    return LensRecord(top1, confidence, nll)


def agreement(top1: np.ndarray) -> np.ndarray:
    """``(S,)``: share of tokens whose top-1 at each state equals the top-1 at the last state."""
    return (top1 == top1[-1]).mean(axis=1)


def settled(top1: np.ndarray) -> np.ndarray:
    """``(S,)``: share of tokens whose top-1 equals the final one at this state and at every later one."""
    agree = top1 == top1[-1]
    return np.logical_and.accumulate(agree[::-1], axis=0)[::-1].mean(axis=1)


def confident_agreement(record: LensRecord, threshold: float) -> np.ndarray:
    """``(S,)``: share of tokens that agree with the final top-1 with lens probability >= ``threshold``."""
    return ((record.top1 == record.top1[-1]) & (record.confidence >= threshold)).mean(axis=1)


def exit_states(condition: np.ndarray, min_state: int = 1) -> np.ndarray:
    """``(n,)``: first state ``>= min_state`` where ``condition`` ``(S, n)`` holds, else the last state."""
    condition = condition.copy()
    condition[:min_state] = False
    condition[-1] = True
    return np.argmax(condition, axis=0)


def exit_policy(record: LensRecord, threshold: float, oracle: bool, min_state: int = 1) -> dict[str, float]:
    """Saving, perplexity and final-top-1 match of one exit policy (module docstring).

    Exits start at ``min_state`` (default 1: with tied embeddings the lens of ``h_0`` predicts the
    input token itself, confidently and wrongly).
    """
    condition = record.confidence >= threshold
    if oracle:
        condition &= record.top1 == record.top1[-1]
    exits = exit_states(condition, min_state)
    tokens = np.arange(exits.size)
    last = record.top1.shape[0] - 1
    return {
        "threshold": threshold,
        "compute_saving": float(np.mean(1 - exits / last)),
        "mean_exit_state": float(exits.mean()),
        "perplexity": float(np.exp(record.nll[exits, tokens].astype(np.float64).mean())),
        "final_top1_match": float(np.mean(record.top1[exits, tokens] == record.top1[-1])),
    }


def early_exit_summary(record: LensRecord, thresholds: tuple[float, ...]) -> dict:
    """Every lens statistic of the module docstring, as plain lists."""
    return {
        "tokens": int(record.top1.shape[1]),
        "agreement": agreement(record.top1),
        "settled": settled(record.top1),
        "confident_agreement": {f"{t:g}": confident_agreement(record, t) for t in thresholds},
        "lens_mean_nll": record.nll.astype(np.float64).mean(axis=1),
        "oracle_exit": [exit_policy(record, t, oracle=True) for t in (0.0, *thresholds)],
        "confidence_exit": [exit_policy(record, t, oracle=False) for t in thresholds],
    }
