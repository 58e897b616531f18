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
states (``layer_batch`` layers vmapped at a time); the K samples are batched. Both versions share one
block call of 2K perturbed copies; ``versions=("aggregate",)`` or ``("tokenwise",)`` runs K copies
and leaves the other version's fields None, so a caller who needs one version pays for one. With a ``mesh``
(:mod:`rhojax.sharding`) the samples are split over its data axis, K padded to a multiple of it and the
padded samples dropped: every kept sample sees the same direction as on one device.
"""

from __future__ import annotations

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

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
from rhojax.sharding import constrain_rows, constrain_whole, padded_size


def downstream_amplification(rho: np.ndarray) -> np.ndarray:
    """``A_t = prod_{s >= t} rho_s`` for a per-layer ``rho`` (L,); ``A`` has shape (L,)."""
    rho = np.asarray(rho, dtype=np.float64)
    return np.cumprod(rho[::-1])[::-1]


def lyapunov_trajectory(rho: np.ndarray, v0: float) -> np.ndarray:
    """``V_0 = v0``, ``V_{t+1} = rho_t^2 V_t``: the Lyapunov function through depth, shape (L + 1,)."""
    rho = np.asarray(rho, dtype=np.float64)
    return v0 * np.concatenate([[1.0], np.cumprod(rho**2)])


#: The two versions of the profile: Frobenius norms over every token, or per-token ratios.
VERSIONS: tuple[str, ...] = ("aggregate", "tokenwise")

#: The fields of :class:`RhoProfile` that only the token-wise version fills.
TOKENWISE_FIELDS: tuple[str, ...] = ("token_alpha", "token_rho_mean", "token_rho_median", "sink_rho", "token_rho")

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

    A profile computed for one version only has None in the other version's fields (``beta`` and
    ``rho``, or :data:`TOKENWISE_FIELDS`).

    The reported value of a statistic is its mean over samples, :meth:`mean` (L,), with the 95% interval
    :meth:`ci` (L, 2). A profile is a pytree (every field a leaf), so the traceable
    :func:`rho_statistics` can return one from inside ``jax.jit`` or ``jax.vmap``; :func:`rho_profile`
    returns the same fields as float64 NumPy arrays.
    """

    eps: float
    alpha: np.ndarray
    beta: np.ndarray | None
    rho: np.ndarray | None
    beta_linear: np.ndarray | None
    token_alpha: np.ndarray | None
    token_rho_mean: np.ndarray | None
    token_rho_median: np.ndarray | None
    sink_rho: np.ndarray | None
    token_rho: np.ndarray | None
    sink: np.ndarray

    def _samples(self, stat: str) -> np.ndarray:
        if stat not in SAMPLED_STATISTICS:
            raise RhojaxError(f"statistic {stat!r}: choose one of {', '.join(SAMPLED_STATISTICS)}")
        values = getattr(self, stat)
        if values is None:
            hint = "linearised=True" if stat == "rho_linear" else "versions that include it"
            raise RhojaxError(f"statistic {stat!r} was not computed: pass {hint}")
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
        return downstream_amplification(self.mean("rho" if version == "aggregate" else "token_rho_mean"))

    def to_dict(self) -> dict:
        """Plain data for JSON: each sampled statistic as ``name`` (L,) mean, ``name_ci`` (L, 2), ``name_samples``."""
        out = {"eps": self.eps, "alpha": self.alpha}
        if self.rho is not None:
            out |= per_sample_summary("beta", self.beta)
            out |= per_sample_summary("rho", self.rho)
        if self.token_rho is not None:
            out["token_alpha"] = self.token_alpha
            for stat in ("token_rho_mean", "token_rho_median", "sink_rho"):
                out |= per_sample_summary(stat, getattr(self, stat))
        if self.beta_linear is not None:
            out |= per_sample_summary("rho_linear", self.rho_linear)
        if self.token_rho is not None:
            out["token_rho_quantiles"] = token_quantiles(self.token_rho, ~self.sink)
        if self.rho is not None:
            out["downstream_aggregate"] = self.downstream("aggregate")
        if self.token_rho is not None:
            out["downstream_tokenwise"] = self.downstream("tokenwise")
        return out


#: The (K,) statistics of :func:`layer_statistics` (one value per perturbation sample).
PER_SAMPLE = frozenset({"beta", "token_rho_mean", "token_rho_median", "sink_rho", "beta_linear"})


def layer_statistics(f, h_in: jax.Array, h_out: jax.Array, g: jax.Array, eps, sink: jax.Array, *,
                     linearised: bool, versions: tuple[str, ...] = VERSIONS, kept_samples: int | None = None,
                     spread=lambda x: x) -> dict:
    """Statistics of one layer ``f`` (clean ``h_out = f(h_in)``) for directions ``g`` (K, N, T, D).

    Returns alpha (scalar); for the aggregate version beta (K,); for the token-wise version
    token_alpha (scalar), token_rho_mean/median and sink_rho (K,) and token_rho (N, T) (mean over
    the first ``kept_samples`` samples, default all); if ``linearised``, beta_linear (K,). One call of ``f``
    on the K copies of each version. ``spread(x)`` places a stacked batch of perturbed states (leading
    sample axis) before ``f`` runs on it (:func:`rhojax.sharding.constrain_rows`; default: as it is).
    """
    samples = g.shape[0]
    scale = {"aggregate": scale_aggregate, "tokenwise": scale_tokenwise}
    e = {v: scale[v](g, h_in, eps) for v in versions}
    d = f(spread(h_in + jnp.concatenate([e[v] for v in versions]))) - h_out
    d = {v: d[i * samples:(i + 1) * samples] for i, v in enumerate(versions)}
    out = {"alpha": frobenius(h_out) / frobenius(h_in)}
    if "aggregate" in versions:
        out["beta"] = frobenius(d["aggregate"]) / frobenius(e["aggregate"])
    if "tokenwise" in versions:
        tok_alpha = token_norms(h_out) / token_norms(h_in)  # (N, T)
        tok_rho = token_norms(d["tokenwise"]) / token_norms(e["tokenwise"]) / tok_alpha  # (K, N, T)
        kept = jnp.where(sink, jnp.nan, tok_rho)
        out |= {
            "token_alpha": jnp.nanmean(jnp.where(sink, jnp.nan, tok_alpha)),
            "token_rho_mean": jnp.nanmean(kept, axis=(1, 2)),
            "token_rho_median": jnp.nanmedian(kept.reshape(samples, -1), axis=1),
            "sink_rho": jnp.nanmean(jnp.where(sink, tok_rho, jnp.nan), axis=(1, 2)),
            "token_rho": tok_rho[:kept_samples].mean(axis=0),
        }
    if linearised:
        unit = spread(scale_aggregate(g, h_in, 1.0))
        jv = jax.vmap(lambda t: jax.jvp(f, (h_in,), (t,))[1])(unit)
        out["beta_linear"] = frobenius(jv) / frobenius(unit)
    return out


@functools.partial(jax.jit, static_argnames=("config", "samples", "linearised", "layer_batch", "versions", "mesh"))
def _profile_arrays(config, blocks, hidden, key, eps, sink, *, samples, linearised, layer_batch, versions, mesh):
    positions = jnp.arange(hidden.shape[-2], dtype=jnp.int32)
    padded = padded_size(samples, mesh)

    def per_layer(xs):
        p, h_in, h_out, layer = xs
        g = directions(key, layer, padded, h_in.shape)
        return layer_statistics(lambda x: block(config, p, x, positions), h_in, h_out, g, eps, sink,
                                linearised=linearised, versions=versions, kept_samples=samples,
                                spread=lambda x: constrain_rows(x, mesh))

    num = hidden.shape[0] - 1
    xs = (blocks, hidden[:-1], hidden[1:], jnp.arange(num))
    out = jax.lax.map(per_layer, xs, batch_size=layer_batch)
    out = {k: v[:, :samples] if k in PER_SAMPLE else v for k, v in out.items()}  # padded samples dropped
    return jax.tree.map(lambda v: constrain_whole(v, mesh), out)


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
    versions: tuple[str, ...] = VERSIONS,
    mesh: Mesh | None = None,
) -> RhoProfile:
    """The traceable core of :func:`rho_profile`: the same :class:`RhoProfile` with ``jax.Array`` fields.

    Works under ``jax.jit`` and ``jax.vmap`` (over params trees, states, keys or ``eps``); ``hidden`` is the
    clean ``(L + 1, N, T, D)`` from ``forward(..., return_hidden=True)``. ``versions``: see the module docstring.
    """
    if set(versions) - set(VERSIONS) or not versions:
        raise RhojaxError(f"versions {tuple(versions)!r}: choose one or both of {', '.join(VERSIONS)}")
    versions = tuple(v for v in VERSIONS if v in versions)
    sink = sink_mask(hidden.shape[-2], sink_positions)
    a = _profile_arrays(
        config, params["blocks"], hidden, key, eps, sink,
        samples=samples, linearised=linearised, layer_batch=layer_batch, versions=versions, mesh=mesh,
    )
    return RhoProfile(
        eps=eps,
        alpha=a["alpha"],
        beta=a.get("beta"),
        rho=a["beta"] / a["alpha"][..., None] if "beta" in a else None,
        beta_linear=a.get("beta_linear"),
        **{name: a.get(name) for name in TOKENWISE_FIELDS},
        sink=sink,
    )


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
    versions: tuple[str, ...] = VERSIONS,
    mesh: Mesh | None = None,
) -> RhoProfile:
    """alpha_t, beta_t and rho_t of every layer for K Gaussian perturbations of relative size ``eps``.

    ``hidden`` is the cached clean ``(L + 1, N, T, D)`` from ``forward(..., return_hidden=True)``;
    sample ``k`` at layer ``t`` uses the direction of :func:`~rhojax.propagation.perturbations.directions`.
    ``layer_batch`` layers are vmapped per step of the ``lax.map`` over layers (1: a scan). ``versions``
    (aggregate, tokenwise or both) says which statistics to compute; the other version's fields are None.
    Fields are float64 NumPy arrays (``eps`` a float); :func:`rho_statistics` is the traceable version. With a
    ``mesh`` (:func:`rhojax.sharding.make_mesh`) the samples are split over its data axis.
    """
    chex.assert_rank(hidden, 4)
    chex.assert_axis_dimension(hidden, -1, config.hidden_size)
    chex.assert_axis_dimension(hidden, 0, params["blocks"]["attn_norm"]["scale"].shape[0] + 1)
    profile = rho_statistics(config, params, hidden, key, eps=eps, samples=samples, linearised=linearised,
                             sink_positions=sink_positions, layer_batch=layer_batch, versions=versions, mesh=mesh)
    arrays = {f.name: getattr(profile, f.name) for f in dataclasses.fields(profile)}
    arrays = {k: None if v is None else np.asarray(v, np.float64) for k, v in arrays.items()}
    main = "beta" if arrays["beta"] is not None else "token_rho_mean"
    chex.assert_shape(arrays[main], (hidden.shape[0] - 1, samples))
    assert_finite({"alpha": arrays["alpha"], main: arrays[main]})
    return RhoProfile(**{**arrays, "eps": float(eps), "sink": np.asarray(profile.sink)})


jax.tree_util.register_dataclass(
    RhoProfile, data_fields=[f.name for f in dataclasses.fields(RhoProfile)], meta_fields=[]
)
