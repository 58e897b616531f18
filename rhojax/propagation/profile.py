"""The contraction profile: per-layer hidden growth alpha, error growth beta and rho = beta / alpha.

For block ``B_t`` with clean input ``h_t`` and cached clean output ``h_{t+1} = B_t(h_t)``, a
perturbation ``e_t`` gives ``e_{t+1} = B_t(h_t + e_t) - h_{t+1}`` and

    alpha_t = ||h_{t+1}|| / ||h_t||,   beta_t = ||e_{t+1}|| / ||e_t||,   rho_t = beta_t / alpha_t.

*Aggregate* statistics take Frobenius norms over every evaluated token with the perturbation scaled to
the whole batch of windows (see :mod:`rhojax.propagation.perturbations`); *token-wise* statistics
scale each token's perturbation to that token's norm and form the ratios per token, summarised by
mean and median over non-sink tokens, with sink positions (default: BOS) reported separately.
The linearised limit replaces ``e_{t+1}`` by the Jacobian-vector product ``J_t e_t`` (``jax.jvp``).

All layers are processed in one jitted ``lax.map`` over the stacked block params and the cached
states (``layer_batch`` layers vmapped at a time); the K samples are batched.
"""

from __future__ import annotations

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rhojax.checks import assert_finite
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import block
from rhojax.propagation.perturbations import (
    directions,
    frobenius,
    scale_aggregate,
    scale_tokenwise,
    sink_mask,
    token_norms,
)
from rhojax.propagation.stats import mean_ci, per_sample_summary, token_quantiles


def downstream_amplification(rho: np.ndarray) -> np.ndarray:
    """``A_t = prod_{s >= t} rho_s`` for a per-layer ``rho`` (L,); ``A`` has shape (L,)."""
    rho = np.asarray(rho, dtype=np.float64)
    return np.cumprod(rho[::-1])[::-1]


def lyapunov_trajectory(rho: np.ndarray, v0: float) -> np.ndarray:
    """``V_0 = v0``, ``V_{t+1} = rho_t^2 V_t``: the Lyapunov function through depth, shape (L + 1,)."""
    rho = np.asarray(rho, dtype=np.float64)
    return v0 * np.concatenate([[1.0], np.cumprod(rho**2)])


#: The per-sample statistics of a :class:`RhoProfile` that :meth:`RhoProfile.mean` and :meth:`RhoProfile.ci` summarise.
SAMPLED_STATISTICS: tuple[str, ...] = ("rho", "beta", "token_rho_mean", "token_rho_median", "sink_rho", "rho_linear")


@dataclasses.dataclass(frozen=True)
class RhoProfile:
    """Per-layer propagation statistics at one relative magnitude ``eps``.

    Shapes (L layers, K samples, N windows, T tokens):

    - ``alpha`` (L,): aggregate hidden growth ``||h_{t+1}|| / ||h_t||``;
    - ``beta``, ``rho`` (L, K): aggregate error growth and ``rho = beta / alpha``, one value per sample;
    - ``beta_linear`` (L, K) or None: ``||J e|| / ||e||`` along the same directions (linearised limit);
    - ``token_alpha`` (L,): mean over non-sink tokens of the per-token ``alpha``;
    - ``token_rho_mean``, ``token_rho_median``, ``sink_rho`` (L, K): per-token rho summarised per sample;
    - ``token_rho`` (L, N, T): per-token rho, mean over samples; ``sink`` (T,): bool mask of sink positions.

    The reported value of a statistic is its mean over samples, :meth:`mean` (L,), with the 95% interval
    :meth:`ci` (L, 2). A profile is a pytree (every field a leaf), so the traceable
    :func:`rho_statistics` can return one from inside ``jax.jit`` or ``jax.vmap``; :func:`rho_profile`
    returns the same fields as float64 NumPy arrays.
    """

    eps: float
    alpha: np.ndarray
    beta: np.ndarray
    rho: np.ndarray
    beta_linear: np.ndarray | None
    token_alpha: np.ndarray
    token_rho_mean: np.ndarray
    token_rho_median: np.ndarray
    sink_rho: np.ndarray
    token_rho: np.ndarray
    sink: np.ndarray

    def _samples(self, stat: str) -> np.ndarray:
        if stat not in SAMPLED_STATISTICS:
            raise RhojaxError(f"statistic {stat!r}: choose one of {', '.join(SAMPLED_STATISTICS)}")
        values = getattr(self, stat)
        if values is None:
            raise RhojaxError(f"statistic {stat!r} was not computed: pass linearised=True")
        return np.asarray(values, np.float64)

    def mean(self, stat: str = "rho") -> np.ndarray:
        """Sample mean of ``stat`` per layer, shape (L,) (``stat`` one of :data:`SAMPLED_STATISTICS`)."""
        return mean_ci(self._samples(stat))[0]

    def ci(self, stat: str = "rho") -> np.ndarray:
        """95% normal-approximation interval of the sample mean of ``stat`` per layer, shape (L, 2)."""
        _, lo, hi = mean_ci(self._samples(stat))
        return np.stack([lo, hi], axis=-1)

    @property
    def rho_linear(self) -> np.ndarray | None:
        """``beta_linear / alpha`` (L, K): rho in the linearised limit, or None when it was not computed."""
        return None if self.beta_linear is None else self.beta_linear / self.alpha[:, None]

    def downstream(self, version: str = "aggregate") -> np.ndarray:
        """``A_t`` from the sample-mean rho of ``version`` (aggregate or token-wise mean)."""
        if version not in ("aggregate", "tokenwise"):
            raise RhojaxError(f"version {version!r}: choose aggregate or tokenwise")
        rho = self.rho if version == "aggregate" else self.token_rho_mean
        return downstream_amplification(rho.mean(axis=1))

    def to_dict(self) -> dict:
        """Plain data for JSON: each sampled statistic as ``name`` (L,) mean, ``name_ci`` (L, 2), ``name_samples``."""
        out = {"eps": self.eps, "alpha": self.alpha, "token_alpha": self.token_alpha}
        out |= per_sample_summary("beta", self.beta)
        out |= per_sample_summary("rho", self.rho)
        out |= per_sample_summary("token_rho_mean", self.token_rho_mean)
        out |= per_sample_summary("token_rho_median", self.token_rho_median)
        out |= per_sample_summary("sink_rho", self.sink_rho)
        if self.beta_linear is not None:
            out |= per_sample_summary("rho_linear", self.rho_linear)
        out["token_rho_quantiles"] = token_quantiles(self.token_rho, ~self.sink)
        out["downstream_aggregate"] = self.downstream("aggregate")
        out["downstream_tokenwise"] = self.downstream("tokenwise")
        return out


def layer_statistics(f, h_in: jax.Array, h_out: jax.Array, g: jax.Array, eps, sink: jax.Array, *,
                     linearised: bool) -> dict:
    """Statistics of one layer ``f`` (clean ``h_out = f(h_in)``) for directions ``g`` (K, N, T, D).

    Returns alpha (scalar), beta (K,), token_alpha (scalar), token_rho_mean/median and sink_rho (K,),
    token_rho (N, T) (mean over samples) and, if ``linearised``, beta_linear (K,).
    """
    samples = g.shape[0]
    e_agg, e_tok = scale_aggregate(g, h_in, eps), scale_tokenwise(g, h_in, eps)
    d = f(h_in + jnp.concatenate([e_agg, e_tok])) - h_out
    d_agg, d_tok = d[:samples], d[samples:]
    tok_alpha = token_norms(h_out) / token_norms(h_in)  # (N, T)
    tok_rho = token_norms(d_tok) / token_norms(e_tok) / tok_alpha  # (K, N, T)
    kept = jnp.where(sink, jnp.nan, tok_rho)
    out = {
        "alpha": frobenius(h_out) / frobenius(h_in),
        "beta": frobenius(d_agg) / frobenius(e_agg),
        "token_alpha": jnp.nanmean(jnp.where(sink, jnp.nan, tok_alpha)),
        "token_rho_mean": jnp.nanmean(kept, axis=(1, 2)),
        "token_rho_median": jnp.nanmedian(kept.reshape(samples, -1), axis=1),
        "sink_rho": jnp.nanmean(jnp.where(sink, tok_rho, jnp.nan), axis=(1, 2)),
        "token_rho": tok_rho.mean(axis=0),
    }
    if linearised:
        unit = scale_aggregate(g, h_in, 1.0)
        jv = jax.vmap(lambda t: jax.jvp(f, (h_in,), (t,))[1])(unit)
        out["beta_linear"] = frobenius(jv) / frobenius(unit)
    return out


def layer_profile(config, p, h_in, h_out, key, layer, eps, sink, *, samples, linearised) -> dict:
    """:func:`layer_statistics` of block ``p`` at layer ``layer`` for the directions of
    :func:`~rhojax.propagation.perturbations.directions` (the per-layer step of :func:`rho_statistics`)."""
    positions = jnp.arange(h_in.shape[-2], dtype=jnp.int32)
    g = directions(key, layer, samples, h_in.shape)
    return layer_statistics(lambda x: block(config, p, x, positions), h_in, h_out, g, eps, sink,
                            linearised=linearised)


@functools.partial(jax.jit, static_argnames=("config", "samples", "linearised", "layer_batch"))
def _profile_arrays(config, blocks, hidden, key, eps, sink, *, samples, linearised, layer_batch):
    def per_layer(xs):
        p, h_in, h_out, layer = xs
        return layer_profile(config, p, h_in, h_out, key, layer, eps, sink, samples=samples, linearised=linearised)

    num = hidden.shape[0] - 1
    xs = (blocks, hidden[:-1], hidden[1:], jnp.arange(num))
    return jax.lax.map(per_layer, xs, batch_size=layer_batch)


def profile_from_arrays(a: dict, eps, sink) -> RhoProfile:
    """The :class:`RhoProfile` of per-layer statistics ``a`` (each stacked on a leading layer axis)."""
    return RhoProfile(
        eps=eps,
        alpha=a["alpha"],
        beta=a["beta"],
        rho=a["beta"] / a["alpha"][..., None],
        beta_linear=a.get("beta_linear"),
        token_alpha=a["token_alpha"],
        token_rho_mean=a["token_rho_mean"],
        token_rho_median=a["token_rho_median"],
        sink_rho=a["sink_rho"],
        token_rho=a["token_rho"],
        sink=sink,
    )


def profile_as_numpy(profile: RhoProfile) -> RhoProfile:
    """``profile`` with float64 NumPy fields and a float ``eps``, checked finite (what :func:`rho_profile`
    returns)."""
    arrays = {f.name: getattr(profile, f.name) for f in dataclasses.fields(profile)}
    arrays = {k: None if v is None else np.asarray(v, np.float64) for k, v in arrays.items()}
    assert_finite({"alpha": arrays["alpha"], "beta": arrays["beta"]})
    return RhoProfile(**{**arrays, "eps": float(profile.eps), "sink": np.asarray(profile.sink)})


def rho_statistics(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    key: jax.Array,
    *,
    eps: float | jax.Array = 0.01,
    samples: int = 8,
    linearised: bool = True,
    sink_positions: tuple[int, ...] = (0,),
    layer_batch: int = 1,
) -> RhoProfile:
    """The traceable core of :func:`rho_profile`: the same :class:`RhoProfile` with ``jax.Array`` fields.

    Works under ``jax.jit`` and ``jax.vmap`` (over params trees, states, keys or ``eps``); ``hidden`` is the
    clean ``(L + 1, N, T, D)`` from ``forward(..., return_hidden=True)``.
    """
    sink = sink_mask(hidden.shape[-2], sink_positions)
    a = _profile_arrays(
        config, params["blocks"], hidden, key, eps, sink,
        samples=samples, linearised=linearised, layer_batch=layer_batch,
    )
    return profile_from_arrays(a, eps, sink)


def rho_profile(
    config: ModelConfig,
    params: dict,
    hidden: jax.Array,
    key: jax.Array,
    *,
    eps: float = 0.01,
    samples: int = 8,
    linearised: bool = True,
    sink_positions: tuple[int, ...] = (0,),
    layer_batch: int = 1,
) -> RhoProfile:
    """alpha_t, beta_t and rho_t of every layer for K Gaussian perturbations of relative size ``eps``.

    ``hidden`` is the cached clean ``(L + 1, N, T, D)`` from ``forward(..., return_hidden=True)``;
    sample ``k`` at layer ``t`` uses the direction of :func:`~rhojax.propagation.perturbations.directions`.
    ``layer_batch`` layers are vmapped per step of the ``lax.map`` over layers (1: a scan). Fields are
    float64 NumPy arrays (``eps`` a float); :func:`rho_statistics` is the traceable version.
    """
    chex.assert_rank(hidden, 4)
    chex.assert_axis_dimension(hidden, -1, config.hidden_size)
    chex.assert_axis_dimension(hidden, 0, params["blocks"]["attn_norm"]["scale"].shape[0] + 1)
    profile = rho_statistics(config, params, hidden, key, eps=eps, samples=samples, linearised=linearised,
                             sink_positions=sink_positions, layer_batch=layer_batch)
    chex.assert_shape(profile.beta, (hidden.shape[0] - 1, samples))
    return profile_as_numpy(profile)


jax.tree_util.register_dataclass(
    RhoProfile, data_fields=[f.name for f in dataclasses.fields(RhoProfile)], meta_fields=[]
)
