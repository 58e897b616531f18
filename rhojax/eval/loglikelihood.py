"""Batched, jit-compiled log-likelihood of continuations given contexts (lm-eval ``loglikelihood``).

For a request ``(context, continuation)`` with tokens ``c`` and ``x_1..x_m``::

    loglik = sum_j log p(x_j | c, x_<j)        greedy = all_j x_j == argmax p(. | c, x_<j)

Tokenization follows lm-evaluation-harness: trailing spaces of the context move to the
continuation, ``context + continuation`` is encoded whole and the continuation tokens are the
ones after ``len(encode(context))``. No BOS is added unless asked (lm-eval adds none for
SmolLM2's tokenizer); an empty context starts from the BOS (or EOS) token, as lm-eval does.
Sequences longer than the model's context are cut on the left.

Requests are right-padded (harmless under causal attention) to a power-of-two length bucket and
a power-of-two continuation bucket, so only a handful of shapes compile.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.errors import DataError
from rhojax.io.tokenizer import Tokenizer
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import default_positions, embed, run_blocks, unembed

Request = tuple[list[int], list[int]]  # (context tokens, continuation tokens)


def encode_request(tokenizer: Tokenizer, context: str, continuation: str, *, prepend_bos: bool = False) -> Request:
    """Context and continuation token ids, split the way lm-evaluation-harness splits them."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    context_ids = tokenizer.encode(context)
    continuation_ids = whole[len(context_ids) :]
    start = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id
    if prepend_bos or not context_ids:
        if start is None:
            raise DataError("the tokenizer has neither a BOS nor an EOS token to start a request with")
        context_ids = [start, *context_ids]
    if not continuation_ids:
        raise DataError(f"continuation {continuation!r} encodes to no tokens after context {context[-40:]!r}")
    return context_ids, continuation_ids


def bucket(n: int, smallest: int) -> int:
    """Smallest power of two that is ``>= n`` and ``>= smallest``."""
    return max(smallest, 1 << (n - 1).bit_length())


@functools.partial(jax.jit, static_argnames="config")
def continuation_scores(
    config: ModelConfig, params: dict, inputs: jax.Array, starts: jax.Array, targets: jax.Array, lengths: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(loglik, greedy)`` per row for a right-padded batch.

    ``inputs`` (B, T): the request tokens without the last one; ``targets`` (B, C): continuation
    tokens, the first ``lengths[b]`` real, predicted at positions ``starts[b] + j``. Only those C
    positions go through the final norm and the output matrix.
    """
    positions = default_positions(inputs)
    h = run_blocks(config, params["blocks"], embed(config, params, inputs, positions), positions)
    offsets = jnp.arange(targets.shape[1])
    index = jnp.minimum(starts[:, None] + offsets[None, :], inputs.shape[1] - 1)
    h_cont = jnp.take_along_axis(h, index[..., None], axis=1)
    logp = jax.nn.log_softmax(unembed(config, params, h_cont).astype(jnp.float32), axis=-1)
    token_logp = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    real = offsets[None, :] < lengths[:, None]
    loglik = jnp.where(real, token_logp, 0.0).sum(-1)
    greedy = jnp.where(real, logp.argmax(-1) == targets, True).all(-1)
    return loglik, greedy


def _truncate(request: Request, max_len: int) -> tuple[list[int], int]:
    """The whole token sequence cut to ``max_len + 1`` tokens on the left, and the continuation start."""
    context, continuation = request
    if len(continuation) > max_len:
        raise DataError(f"a continuation of {len(continuation)} tokens exceeds the model context of {max_len}")
    sequence = (context + continuation)[-(max_len + 1) :]
    return sequence, len(sequence) - len(continuation) - 1


def score_requests(
    config: ModelConfig,
    params: dict,
    requests: list[Request],
    *,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(loglik float64 (N,), greedy bool (N,))`` for every request, in the order given.

    Requests are grouped by (length bucket, continuation bucket) and sorted by length; each group is
    cut into ``batch_size`` rows (the last batch padded with copies of its first row, then dropped).
    ``on_batch(n_requests_done)`` reports progress.
    """
    max_len = config.max_position_embeddings
    prepared = [_truncate(r, max_len) for r in requests]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, ((sequence, _), (_, continuation)) in enumerate(zip(prepared, requests, strict=True)):
        key = (min(bucket(len(sequence) - 1, 16), max_len), bucket(len(continuation), 4))
        groups.setdefault(key, []).append(i)
    loglik = np.zeros(len(requests), np.float64)
    greedy = np.zeros(len(requests), bool)
    done = 0
    for (length, cont_len), members in sorted(groups.items()):
        members.sort(key=lambda i: len(prepared[i][0]))
        for first in range(0, len(members), batch_size):
            rows = members[first : first + batch_size]
            padded = rows + [rows[0]] * (batch_size - len(rows))
            inputs = np.zeros((batch_size, length), np.int32)
            targets = np.zeros((batch_size, cont_len), np.int32)
            starts = np.zeros(batch_size, np.int32)
            lengths = np.zeros(batch_size, np.int32)
            for b, i in enumerate(padded):
                sequence, start = prepared[i]
                continuation = requests[i][1]
                inputs[b, : len(sequence) - 1] = sequence[:-1]
                targets[b, : len(continuation)] = continuation
                starts[b], lengths[b] = start, len(continuation)
            ll, gr = continuation_scores(config, params, inputs, starts, targets, lengths)
            loglik[rows] = np.asarray(ll)[: len(rows)]
            greedy[rows] = np.asarray(gr)[: len(rows)]
            done += len(rows)
            if on_batch is not None:
                on_batch(done)
    return loglik, greedy
