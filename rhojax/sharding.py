"""Several devices with JAX's own sharding: a (data, model) mesh, data-parallel batches, tensor-parallel weights.

Everything here is opt-in: a function that takes ``mesh=None`` runs the single-device path unchanged, and
with a :class:`jax.sharding.Mesh` from :func:`make_mesh` it lays its batch out over the ``data`` axis and
lets ``jax.jit`` (GSPMD) partition the work. Nothing is scheduled by hand.

- ``data`` axis: independent items of a batch go to different devices (evaluation windows for perplexity
  and clean states, perturbation samples for the rho profile, compressed sites for the sensitivity sweep).
  A batch whose size does not divide the axis is padded (:func:`pad_rows`, copies of its first item) and the
  padded results are dropped, so uneven counts work and the kept numbers are those of the unpadded batch.
- ``model`` axis: the weights are split tensor-parallel (:func:`param_shardings`): q, k, v, gate and up by
  output columns (attention by whole heads), o and down by input rows, so each device holds 1/m of every
  block matrix and one all-reduce per branch joins the partial products. The embedding and an untied
  output matrix are split along the vocabulary. Leaves whose split axis does not divide stay replicated.

Multi-host: call ``jax.distributed.initialize()`` first in every process; :func:`make_mesh` then spans every
device of every host (see docs/scaling.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig

DATA = "data"
MODEL = "model"


def make_mesh(devices: int | None = None, *, model: int = 1) -> Mesh:
    """A ``(devices // model, model)`` mesh with axes ``("data", "model")`` over the first ``devices`` devices.

    ``devices`` None or 0 takes every visible device (every host's, after ``jax.distributed.initialize``).
    The axes are ``Auto`` (the default of :class:`jax.sharding.Mesh` in every JAX version rhojax supports):
    ``jax.jit`` propagates the shardings of its inputs through the computation. Devices are ordered by
    ``mesh_utils.create_device_mesh`` (the physical topology on TPUs), as ``jax.make_mesh`` does.
    """
    available = jax.devices()
    n = len(available) if not devices else int(devices)
    if not 1 <= n <= len(available):
        raise RhojaxError(f"devices={n}: between 1 and the {len(available)} visible devices "
                          f"({available[0].platform}), or 0 for all of them")
    if model < 1 or n % model:
        raise RhojaxError(f"model={model}: the model axis must divide devices={n}")
    return Mesh(mesh_utils.create_device_mesh((n // model, model), devices=available[:n]), (DATA, MODEL))


def device_mesh(devices: int = 1, model: int = 1) -> Mesh | None:
    """:func:`make_mesh` of ``devices`` (0: all visible), or None for the single-device default: one device
    and no model axis."""
    n = devices or len(jax.devices())
    return None if n == 1 and model == 1 else make_mesh(n, model=model)


def data_size(mesh: Mesh | None) -> int:
    """Number of data-parallel groups of ``mesh`` (1 without a mesh)."""
    return 1 if mesh is None else int(mesh.shape[DATA])


def padded_size(n: int, mesh: Mesh | None) -> int:
    """``n`` rounded up to a multiple of the data axis (``n`` itself without a mesh)."""
    d = data_size(mesh)
    return -(-n // d) * d


def pad_rows(x: np.ndarray, size: int) -> np.ndarray:
    """``x`` (n, ...) padded to ``size`` rows with copies of its first row (``x`` itself when n == size)."""
    x = np.asarray(x)
    if len(x) == size:
        return x
    return np.concatenate([x, np.repeat(x[:1], size - len(x), axis=0)])


def data_spec(axis: int = 0) -> P:
    """The partition spec that splits ``axis`` over the data axis and keeps the others whole."""
    return P(*([None] * axis), DATA)


@functools.cache
def _resharder(sharding: NamedSharding):
    return jax.jit(lambda x: x, out_shardings=sharding)


def place(x, sharding: NamedSharding) -> jax.Array:
    """``x`` laid out as ``sharding``, on one host or several.

    A host value (or an array this process holds whole) is cut on the host and each device receives only its
    own slice (``jax.make_array_from_callback``); an array spread over several hosts is resharded by a
    compiled copy, which is how every host gets a value that no single host held.
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return _resharder(sharding)(x)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_rows(x, mesh: Mesh | None, axis: int = 0):
    """``x`` placed with ``axis`` split over the data axis (its length must divide; see :func:`pad_rows`).

    Without a mesh ``x`` is returned as a ``jax.Array`` on the default device.
    """
    if mesh is None:
        return jnp.asarray(x)
    return place(x, NamedSharding(mesh, data_spec(axis)))


def replicate(tree, mesh: Mesh | None):
    """Every leaf of ``tree`` copied whole onto every device of ``mesh`` (unchanged without a mesh)."""
    if mesh is None:
        return tree
    return jax.tree.map(lambda x: place(x, NamedSharding(mesh, P())), tree)


def gather(tree, mesh: Mesh | None):
    """``tree`` readable on this host: leaves spread over several hosts are replicated, others kept as they are
    (``np.asarray`` of a leaf works afterwards; a no-op on one host)."""
    if mesh is None:
        return tree
    whole = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: x if x.is_fully_addressable else _resharder(whole)(x), tree)


def constrain_rows(x: jax.Array, mesh: Mesh | None, axis: int = 0) -> jax.Array:
    """Inside ``jax.jit``: ask for ``axis`` of ``x`` split over the data axis (a no-op without a mesh)."""
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, data_spec(axis)))


def constrain_whole(x: jax.Array, mesh: Mesh | None) -> jax.Array:
    """Inside ``jax.jit``: ask for ``x`` whole on every device (small results every host reads)."""
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P()))


def _split(size: int, parts: int) -> bool:
    return parts > 1 and size % parts == 0


def block_partition(config: ModelConfig, name: str, leaf: str, m: int) -> P:
    """The partition spec of ``blocks/<name>/<leaf>`` (leading layer axis) over a model axis of size ``m``.

    Column-split (output axis): q by query heads, k and v by key-value heads, gate and up (and their biases)
    by the intermediate width. Row-split (input axis): o by query heads, down by the intermediate width.
    Everything else (norms, output biases of o and down, per-layer flags) is replicated.
    """
    heads = {"q": config.num_heads, "k": config.num_kv_heads, "v": config.num_kv_heads}
    if name in heads and _split(heads[name], m):
        return P(None, None, MODEL) if leaf == "w" else P(None, MODEL)
    if name in ("gate", "up") and _split(config.intermediate_size, m):
        return P(None, None, MODEL) if leaf == "w" else P(None, MODEL)
    if leaf == "w" and ((name == "o" and _split(config.num_heads, m))
                        or (name == "down" and _split(config.intermediate_size, m))):
        return P(None, MODEL, None)
    return P()


def param_shardings(config: ModelConfig, params: dict, mesh: Mesh) -> dict:
    """A tree of :class:`NamedSharding` matching ``params``: tensor-parallel over the mesh's model axis.

    See :func:`block_partition` for the block matrices; ``embed`` (V, D) is split along V and ``lm_head``
    (D, V) along V when V divides; every other leaf is replicated. With a model axis of size 1 every leaf is
    replicated (pure data parallelism).
    """
    m = int(mesh.shape[MODEL])

    def top(name: str) -> P:
        if name == "embed" and _split(config.vocab_size, m):
            return P(MODEL, None)
        if name == "lm_head" and _split(config.vocab_size, m):
            return P(None, MODEL)
        return P()

    def spec(path, _leaf) -> NamedSharding:
        keys = [k.key for k in path]
        if keys[0] == "blocks" and len(keys) == 3:
            return NamedSharding(mesh, block_partition(config, keys[1], keys[2], m))
        return NamedSharding(mesh, top(keys[0]))

    return jax.tree_util.tree_map_with_path(spec, params)


def shard_params(config: ModelConfig, params: dict, mesh: Mesh | None) -> dict:
    """``params`` placed by :func:`param_shardings` (unchanged without a mesh).

    For a model too large for one device, load it on the host first (``with
    jax.default_device(jax.devices("cpu")[0]):``) so that no accelerator ever holds it whole.
    """
    if mesh is None:
        return params
    return jax.tree.map(place, params, param_shardings(config, params, mesh))


def shard_model(model, mesh: Mesh | None):
    """A loaded :class:`~rhojax.io.resolve.Model` with its params placed by :func:`shard_params`."""
    if mesh is None:
        return model
    import dataclasses

    return dataclasses.replace(model, params=shard_params(model.config, model.params, mesh))


def clean_states(config: ModelConfig, params: dict, windows, mesh: Mesh | None = None) -> jax.Array:
    """Every clean residual state ``h_0..h_L`` (L + 1, N, T, D) of ``(N, T)`` windows.

    Without a mesh this is ``forward(..., return_hidden=True)[1]``. With a mesh the windows are padded to a
    multiple of the data axis and split over it; the padded windows are dropped and the states replicated
    (the profile and the drift read every window on every device).
    """
    from rhojax.models.transformer import forward

    windows = np.asarray(windows, np.int32)
    if mesh is None:
        return forward(config, params, jnp.asarray(windows), return_hidden=True)[1]
    n = len(windows)
    tokens = shard_rows(pad_rows(windows, padded_size(n, mesh)), mesh)
    hidden = forward(config, params, tokens, return_hidden=True)[1]
    return _resharder(NamedSharding(mesh, P()))(hidden[:, :n])
