"""The params layout of a config, random initialisation, and assembly from per-tensor sources.

Loaders describe *where* each tensor lives; :func:`assemble_params` owns the checks (shape,
finiteness) and the stacking onto the layer axis, so every loader validates the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhojax.errors import LoadError
from rhojax.models.config import ModelConfig

#: Key of one tensor: a "/"-joined path in the params tree, and the layer for block tensors.
TensorKey = tuple[str, int | None]
#: Per-layer entries of ``blocks`` that describe the layer rather than hold weights.
LAYER_DATA = frozenset({"sliding"})


def _norm_spec(config: ModelConfig, prefix: str, size: int) -> dict[str, tuple[int, ...]]:
    spec = {f"{prefix}/scale": (size,)}
    if config.family == "gpt2":
        spec[f"{prefix}/bias"] = (size,)
    return spec


def block_spec(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Per-layer tensor shapes of one block, keyed by path below ``blocks``.

    gemma3 adds the post-attention and post-MLP norms and ``sliding``: a per-layer scalar,
    1.0 for a sliding-window (local) layer and 0.0 for a global one.
    """
    gpt2 = config.family == "gpt2"
    spec = _norm_spec(config, "attn_norm", config.hidden_size)
    spec |= _norm_spec(config, "mlp_norm", config.hidden_size)
    if config.family == "gemma3":
        spec |= {"post_attn_norm/scale": (config.hidden_size,), "post_mlp_norm/scale": (config.hidden_size,)}
        spec["sliding"] = ()
    for kind in config.site_kinds:
        spec[f"{kind}/w"] = config.site_shape(kind)
        if gpt2 or (config.qkv_bias and kind in ("q", "k", "v")) or (config.o_bias and kind == "o"):
            spec[f"{kind}/b"] = (config.site_shape(kind)[1],)
    if config.qk_norm:
        spec["q_norm/scale"] = (config.head_dim,)
        spec["k_norm/scale"] = (config.head_dim,)
    return spec


def top_spec(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of the tensors outside the block stack."""
    spec = {"embed": (config.vocab_size, config.hidden_size)}
    if config.family == "gpt2":
        spec["pos_embed"] = (config.max_position_embeddings, config.hidden_size)
    spec |= _norm_spec(config, "final_norm", config.hidden_size)
    if not config.tie_embeddings:
        spec["lm_head/w"] = (config.hidden_size, config.vocab_size)
    return spec


def param_at(params: dict, path: str):
    """The leaf of ``params`` at the spec path ``path`` (``"blocks/q/w"``, ``"embed/w"``)."""
    node = params
    for part in path.split("/"):
        node = node[part]
    return node


def _set(tree: dict, path: str, value) -> None:
    *parents, leaf = path.split("/")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def checked_tensor(
    fetch: Callable[[str, int | None], np.ndarray], path: str, layer: int | None, shape: tuple[int, ...], source: str
) -> np.ndarray:
    """``fetch(path, layer)`` as float32 after checking its shape and that it is finite (else :class:`LoadError`)."""
    where = path if layer is None else f"layer {layer} {path}"
    arr = np.asarray(fetch(path, layer))
    if arr.shape != shape:
        raise LoadError(f"{source}: tensor {where} has shape {arr.shape}, expected {shape} for this config")
    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel()
    step = 1 << 22  # checked in slices: no full-size temporary for a vocabulary-sized matrix
    if not all(np.isfinite(flat[i : i + step]).all() for i in range(0, flat.size, step)):
        raise LoadError(f"{source}: tensor {where} contains NaN or Inf values")
    return arr.astype(np.float32, copy=False)


def as_jax(arr: np.ndarray, dtype=jnp.float32) -> jax.Array:
    """``arr`` as a JAX array of ``dtype``; a C-contiguous, 64-byte-aligned float32 array kept as float32 is
    adopted without a copy (so a streamed loader holds one copy of a vocabulary-sized matrix, not two)."""
    if (jnp.dtype(dtype) == np.float32 and arr.dtype == np.float32 and arr.ndim > 0 and arr.flags.c_contiguous
            and arr.flags.writeable and arr.ctypes.data % 64 == 0 and jax.default_backend() == "cpu"):
        return jnp.from_dlpack(arr)
    return jnp.asarray(arr, dtype=dtype)


def _assemble(spec: dict, fetch, layer: int | None, dtype, source: str) -> dict:
    params: dict = {}
    for path, shape in spec.items():
        _set(params, path, as_jax(checked_tensor(fetch, path, layer, shape, source), dtype))
    return params


def assemble_top(
    config: ModelConfig, fetch: Callable[[str, int | None], np.ndarray], *, dtype=jnp.float32, source: str
) -> dict:
    """The params outside the block stack (embeddings, final norm, untied head), checked like every tensor."""
    return _assemble(top_spec(config), fetch, None, dtype, source)


def assemble_block(
    config: ModelConfig, fetch: Callable[[str, int | None], np.ndarray], layer: int, *, dtype=jnp.float32,
    source: str,
) -> dict:
    """The params of block ``layer`` alone (no layer axis, laid out like ``block_params``), checked."""
    return _assemble(block_spec(config), fetch, layer, dtype, source)


def assemble_params(
    config: ModelConfig,
    fetch: Callable[[str, int | None], np.ndarray],
    *,
    dtype=jnp.float32,
    source: str,
) -> dict:
    """Build the params tree by calling ``fetch(path, layer)`` for every tensor of the layout.

    ``fetch`` returns the tensor already in rhojax orientation (linear weights ``(in, out)``) or
    raises :class:`LoadError`. Every tensor is checked for shape and for NaN/Inf as it is read; on
    any error nothing is returned, so nothing half-loaded escapes.
    """
    # Each tensor is converted as soon as it is complete, so host memory peaks near the model's size
    # plus one stacked tensor, not twice the model (this matters for the 1.5B-parameter models).
    # Every layer is read and checked before the stack is allocated: a damaged file's shapes or
    # layer count never turn into a huge allocation.
    params = assemble_top(config, fetch, dtype=dtype, source=source)
    for path, shape in block_spec(config).items():
        layers = [checked_tensor(fetch, path, i, shape, source) for i in range(config.num_layers)]
        _set(params, f"blocks/{path}", jnp.asarray(np.stack(layers), dtype=dtype))
        del layers
    return params


def model_bytes(config: ModelConfig, dtype=jnp.float32) -> int:
    """Bytes of the whole params tree of ``config`` in ``dtype`` (embeddings, every block, head)."""
    per_block = sum(int(np.prod(s)) for s in block_spec(config).values())
    top = sum(int(np.prod(s)) for s in top_spec(config).values())
    return (top + config.num_layers * per_block) * jnp.dtype(dtype).itemsize


def init_params(config: ModelConfig, key: jax.Array, *, dtype=jnp.float32, scale: float = 0.02) -> dict:
    """Random params (normal weights, unit norm scales, zero biases) for tests and synthetic studies."""
    flat = {path: shape for path, shape in top_spec(config).items()}
    flat |= {f"blocks/{p}": (config.num_layers, *s) for p, s in block_spec(config).items()}
    keys = jax.random.split(key, len(flat))
    params: dict = {}
    for k, (path, shape) in zip(keys, flat.items(), strict=True):
        if path == "blocks/sliding":
            value = jnp.asarray(config.default_sliding_layers(), dtype)
        elif path.endswith("scale"):
            value = jnp.ones(shape, dtype)
        elif path.endswith("bias") or path.endswith("/b"):
            value = jnp.zeros(shape, dtype)
        else:
            value = scale * jax.random.normal(k, shape, dtype)
        _set(params, path, value)
    return params


def count_params(params: dict) -> int:
    """Number of weights (the per-layer ``blocks/sliding`` flags are layer data, not weights)."""
    weights = {**params, "blocks": {k: v for k, v in params.get("blocks", {}).items() if k not in LAYER_DATA}}
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(weights))
