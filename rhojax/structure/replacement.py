"""Block linear replacement: one affine map ``h_t -> h_{t+m}`` standing in for blocks t..t+m-1.

Fit on calibration tokens (sink position 0 excluded), by ridge regression shrunk towards the identity
(the no-op block of a residual stream), i.e. ridge on the update ``y - x``::

    W = (C_xx + lam I)^{-1} (C_xy + lam I),   b = mu_y - mu_x W,   lam = ridge * tr(C_xx) / D

with ``C_xx`` the covariance of ``x = h_t`` and ``C_xy`` the cross-covariance with ``y = h_{t+m}``.
(Shrinking towards zero instead, ``W = (C_xx + lam I)^{-1} C_xy``, collapses the low-variance
directions of the stream: on SmolLM2 it did worse than the identity in the middle layers.)

On evaluation tokens (position 0 excluded):

- ``R^2 = 1 - sum ||y - x W - b||^2 / sum ||y - y_bar||^2`` (all dimensions pooled);
- the identity baseline ``R^2_id`` (predicting ``y = x``: what the residual stream gives for free);
- ``R^2_update``: the same residual against the spread of the update ``y - x``, i.e. how much of what
  the blocks *add* the map explains.

Replacement: ``h'_{t+m} = h_t W + b`` at positions >= 1; position 0 keeps its clean state (BOS at
position 0 sees only itself, so its state is the same constant in every window and is cached, not
computed); blocks t+m..L-1 then run as usual. Compression ratio: ``m * (block parameters) / (D^2 + D)``.
A span of m blocks is replaced either by its own directly fitted map or by the chain (composition) of
its m single-block maps.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.models.config import ModelConfig
from rhojax.models.params import LAYER_DATA, block_spec
from rhojax.structure.hidden import batches, hidden_states, nll_from
from rhojax.structure.moments import Moments, drop_positions

Span = tuple[int, int]  # (first replaced block t, number of blocks m): maps h_t to h_{t+m}


@dataclasses.dataclass(frozen=True)
class SpanFit:
    """The fitted affine map ``y = x @ w + b`` replacing blocks ``start .. start + length - 1``."""

    start: int
    length: int
    w: np.ndarray  # (D, D)
    b: np.ndarray  # (D,)


@jax.jit
def _cross_sums(xc: jax.Array, sources: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.einsum("pnd,pne->pde", xc[sources], xc[targets], precision=jax.lax.Precision.HIGHEST)


class SpanMoments:
    """Per-state moments plus the cross sums ``sum (h_t - s_t)^T (h_{t+m} - s_{t+m})`` of each span."""

    def __init__(self, spans: Iterable[Span]):
        self.spans = list(spans)
        self.moments: Moments | None = None
        self.cross = None

    def add(self, tokens_states: jax.Array) -> None:
        """Add ``(S, n, D)`` states (n tokens of every state h_0..h_L)."""
        if self.moments is None:
            self.moments = Moments.empty(np.asarray(tokens_states.mean(1)))
            d = tokens_states.shape[-1]
            self.cross = np.zeros((len(self.spans), d, d))
        centred = jnp.asarray(tokens_states) - jnp.asarray(self.moments.shift, jnp.float32)[:, None, :]
        sources = jnp.asarray([t for t, _ in self.spans])
        targets = jnp.asarray([t + m for t, m in self.spans])
        self.cross += np.asarray(_cross_sums(centred, sources, targets), np.float64)
        self.moments.add(tokens_states)

    def fit(self, ridge: float) -> list[SpanFit]:
        """Ridge solution of every span (see the module docstring for the formula)."""
        m = self.moments
        n = m.count
        shifted_mean = m.total / n
        cov = m.covariance()
        fits = []
        for (t, length), cross in zip(self.spans, self.cross, strict=True):
            c_xy = cross / n - np.outer(shifted_mean[t], shifted_mean[t + length])
            c_xx = cov[t]
            lam = ridge * np.trace(c_xx) / c_xx.shape[0]
            eye = np.eye(c_xx.shape[0])
            w = np.linalg.solve(c_xx + lam * eye, c_xy + lam * eye)
            b = m.mean()[t + length] - m.mean()[t] @ w
            fits.append(SpanFit(t, length, w, b))
        return fits


def compose(first: SpanFit, second: SpanFit) -> SpanFit:
    """``second`` applied after ``first``: ``x -> (x W_1 + b_1) W_2 + b_2``, one affine map of both spans.

    Chaining single-block maps this way feeds each map the previous map's output instead of the clean
    state it was fitted on, unlike a direct fit of the whole span.
    """
    if first.start + first.length != second.start:
        raise ValueError(f"spans {first.start}+{first.length} and {second.start}+{second.length} do not chain")
    return SpanFit(first.start, first.length + second.length, first.w @ second.w, first.b @ second.w + second.b)


def fit_spans(
    config: ModelConfig,
    params: dict,
    windows: np.ndarray,
    spans: Iterable[Span],
    ridge: float = 1e-4,
    batch_size: int = 4,
    skip: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> list[SpanFit]:
    """Fit the affine map of every span on the calibration ``windows`` (clean forward passes only)."""
    acc = SpanMoments(spans)
    done = 0
    for batch in batches(windows, batch_size):
        acc.add(drop_positions(hidden_states(config, params, jnp.asarray(batch)), skip))
        done += len(batch)
        if on_batch is not None:
            on_batch(done)
    return acc.fit(ridge)


def r_squared(fit: SpanFit, hidden: np.ndarray, skip: int = 1) -> dict[str, float]:
    """``r2``, ``r2_identity`` and ``r2_update`` of a fitted span on cached states ``(S, N, T, D)``."""
    d = hidden.shape[-1]
    x = np.asarray(hidden[fit.start, :, skip:], np.float64).reshape(-1, d)
    y = np.asarray(hidden[fit.start + fit.length, :, skip:], np.float64).reshape(-1, d)
    residual = np.sum((y - x @ fit.w - fit.b) ** 2)
    spread = np.sum((y - y.mean(0)) ** 2)
    update = y - x
    update_spread = np.sum((update - update.mean(0)) ** 2)
    return {
        "r2": float(1 - residual / spread),
        "r2_identity": float(1 - np.sum(update**2) / spread),
        "r2_update": float(1 - residual / update_spread) if update_spread > 0 else float("nan"),
    }


def replace_span(h_start: jax.Array, h_end: jax.Array, w: jax.Array, b: jax.Array, skip: int = 1) -> jax.Array:
    """``h_start @ w + b`` at positions >= ``skip``; the clean ``h_end`` at earlier positions."""
    keep = jnp.arange(h_start.shape[-2]) < skip
    return jnp.where(keep[:, None], h_end, h_start @ w + b)


@functools.partial(jax.jit, static_argnames=("config", "skip"))
def _replaced_nll(config, params, h_start, h_end, w, b, end, tokens, skip):
    return nll_from(config, params, replace_span(h_start, h_end, w, b, skip), end, tokens)


def replacement_nll(
    config: ModelConfig,
    params: dict,
    fit: SpanFit,
    hidden: np.ndarray,
    windows: np.ndarray,
    batch_size: int = 4,
    skip: int = 1,
) -> float:
    """Mean NLL per scored token with the span's blocks replaced by its map (cached clean ``hidden``)."""
    end = fit.start + fit.length
    w, b = jnp.asarray(fit.w, jnp.float32), jnp.asarray(fit.b, jnp.float32)
    total = 0.0
    for start in range(0, len(windows), batch_size):
        sl = slice(start, start + batch_size)
        total += float(
            _replaced_nll(config, params, jnp.asarray(hidden[fit.start, sl]), jnp.asarray(hidden[end, sl]),
                          w, b, end, jnp.asarray(windows[sl]), skip)
        )
    return total / (windows.shape[0] * (windows.shape[1] - 1))


def block_parameters(config: ModelConfig) -> int:
    """Parameters of one block (weights, biases and norm scales)."""
    return int(sum(np.prod(shape) for path, shape in block_spec(config).items() if path not in LAYER_DATA))


def compression_ratio(config: ModelConfig, length: int) -> float:
    """``length`` blocks' parameters over the affine map's ``D^2 + D``."""
    d = config.hidden_size
    return length * block_parameters(config) / (d * d + d)
