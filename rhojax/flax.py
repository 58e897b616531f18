"""Flax NNX modules over rhojax params, named like the Hugging Face checkpoint.

:func:`from_params` wraps a ``(config, params)`` pytree in a ``flax.nnx`` module tree **without
copying**: every ``nnx.Param`` holds the very array of ``params``. :func:`to_params` unwraps it
again (the same arrays, so the round trip is exact), and ``module(tokens)`` runs
:func:`rhojax.models.forward` on those arrays, so the Flax model and the functional model are one
implementation. The tree works with ``nnx.jit``, ``nnx.grad``, ``nnx.vmap`` and ``nnx.Optimizer``.

Names follow the Hugging Face checkpoint, with Flax's leaf names (``kernel`` is the ``(in, out)``
weight, ``x @ kernel + bias``; norms have ``scale``; embeddings ``embedding``)::

    llama family (gemma3: see below)               gpt2
    model.embed_tokens.embedding     (V, D)        transformer.wte.embedding    (V, D)
    model.layers.input_layernorm.scale             transformer.wpe.embedding    (P, D)
    model.layers.self_attn.{q,k,v,o}_proj.kernel   transformer.h.ln_1.{scale,bias}
    model.layers.self_attn.{q,k,v}_proj.bias       transformer.h.attn.{q,k,v}_proj.{kernel,bias}
    model.layers.self_attn.{q,k}_norm.scale        transformer.h.attn.c_proj.{kernel,bias}
    model.layers.post_attention_layernorm.scale    transformer.h.ln_2.{scale,bias}
    model.layers.mlp.{gate,up,down}_proj.kernel    transformer.h.mlp.{c_fc,c_proj}.{kernel,bias}
    model.norm.scale                               transformer.ln_f.{scale,bias}
    lm_head.kernel                   (D, V)        (tied to wte)

Gemma-3 (family ``gemma3``) has the llama names plus ``post_attention_layernorm``,
``pre_feedforward_layernorm`` and ``post_feedforward_layernorm`` (its ``scale`` is the effective
``1 + w``, as in rhojax), and ``model.layers.sliding``, a per-layer :class:`LayerFlag` (1 for a
sliding-window layer) that ``nnx.Param`` filters leave out. GPT-2's fused ``c_attn`` is held as its
three parts ``q_proj | k_proj | v_proj`` (fusing them would copy).

**Layers are stacked, not one module per layer.** The block params of rhojax carry a leading
layer axis (the stack runs as one ``lax.scan``), and a per-layer module would need its own array,
that is a slice, that is a copy. So ``model.layers`` is a single module whose Params have shape
``(L, ...)`` (the layout ``nnx.scan``/``nnx.vmap`` give stacked layers), and ``model.layers[N]``
is a *view* of layer ``N``: reading ``model.layers[3].self_attn.q_proj.kernel`` returns the slice,
assigning it writes the slice back into the stacked Param. :func:`get` and :func:`set_` accept the
checkpoint's dotted names with the layer number (``"model.layers.3.self_attn.q_proj.kernel"``).
To train some layers only, mask the updates on the layer axis (:func:`layer_mask`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.params import block_spec, param_at, top_spec
from rhojax.models.transformer import forward

_LLAMA_BLOCK = {
    "attn_norm/scale": "input_layernorm.scale",
    "mlp_norm/scale": "post_attention_layernorm.scale",
    "q_norm/scale": "self_attn.q_norm.scale",
    "k_norm/scale": "self_attn.k_norm.scale",
    **{f"{k}/w": f"self_attn.{k}_proj.kernel" for k in "qkvo"},
    **{f"{k}/b": f"self_attn.{k}_proj.bias" for k in "qkvo"},
    **{f"{k}/w": f"mlp.{k}_proj.kernel" for k in ("gate", "up", "down")},
}
#: Gemma-3's sandwich norms; ``sliding`` (1 for a local layer) is a per-layer flag, not an HF tensor.
_GEMMA3_BLOCK = {
    **_LLAMA_BLOCK,
    "post_attn_norm/scale": "post_attention_layernorm.scale",
    "mlp_norm/scale": "pre_feedforward_layernorm.scale",
    "post_mlp_norm/scale": "post_feedforward_layernorm.scale",
    "sliding": "sliding",
}
_LLAMA_TOP = {"embed": "model.embed_tokens.embedding", "final_norm/scale": "model.norm.scale",
              "lm_head/w": "lm_head.kernel"}
_GPT2_BLOCK = {
    "attn_norm/scale": "ln_1.scale", "attn_norm/bias": "ln_1.bias",
    "mlp_norm/scale": "ln_2.scale", "mlp_norm/bias": "ln_2.bias",
    **{f"{k}/w": f"attn.{k}_proj.kernel" for k in "qkv"},
    **{f"{k}/b": f"attn.{k}_proj.bias" for k in "qkv"},
    "o/w": "attn.c_proj.kernel", "o/b": "attn.c_proj.bias",
    "up/w": "mlp.c_fc.kernel", "up/b": "mlp.c_fc.bias",
    "down/w": "mlp.c_proj.kernel", "down/b": "mlp.c_proj.bias",
}
_GPT2_TOP = {"embed": "transformer.wte.embedding", "pos_embed": "transformer.wpe.embedding",
             "final_norm/scale": "transformer.ln_f.scale", "final_norm/bias": "transformer.ln_f.bias"}
_LAYERS = {"llama": "model.layers", "gemma3": "model.layers", "gpt2": "transformer.h"}
_NAMES = {"llama": (_LLAMA_BLOCK, _LLAMA_TOP), "gemma3": (_GEMMA3_BLOCK, _LLAMA_TOP), "gpt2": (_GPT2_BLOCK, _GPT2_TOP)}


def module_paths(config: ModelConfig) -> dict[str, str]:
    """rhojax params path (``"blocks/q/w"``, ``"embed"``...) -> dotted module path of its Param."""
    block, top = _NAMES[config.family]
    layers = _LAYERS[config.family]
    paths = {path: top[path] for path in top_spec(config)}
    paths |= {f"blocks/{path}": f"{layers}.{block[path]}" for path in block_spec(config)}
    return paths


class Node(nnx.Module):
    """A container of named submodules and Params (attributes are set by :func:`from_params`)."""


class Linear(Node):
    """``x @ kernel + bias``; ``kernel`` is ``(in, out)`` (a leading layer axis inside ``layers``)."""


class Norm(Node):
    """RMSNorm (llama) or LayerNorm (gpt2): ``scale`` and, for LayerNorm, ``bias``."""


class Embedding(Node):
    """A ``(rows, D)`` ``embedding`` table."""


_LEAF_CLASS = {"kernel": Linear, "bias": Linear, "scale": Norm, "embedding": Embedding}


class LayerFlag(nnx.Variable):
    """A per-layer constant (gemma3's ``sliding``): state of the module, but not a trainable Param."""


class LayerView:
    """Layer ``index`` of a stacked :class:`Layers` (sub)module: Params read and written as slices."""

    def __init__(self, node: Node, index: int):
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_index", index)

    def __getattr__(self, name: str):
        child = getattr(self._node, name)
        if isinstance(child, nnx.Variable):
            return child[...][self._index]
        return LayerView(child, self._index)

    def __setattr__(self, name: str, value) -> None:
        param = getattr(self._node, name)
        if not isinstance(param, nnx.Variable):
            raise RhojaxError(f"{name!r} is a submodule; assign its Params (kernel, bias, scale)")
        param[...] = param[...].at[self._index].set(value)

    def __repr__(self) -> str:
        return f"LayerView({type(self._node).__name__}, layer={self._index})"


class Layers(Node):
    """The block stack: every Param has a leading layer axis; ``layers[N]`` is a :class:`LayerView`."""

    def __len__(self) -> int:
        return self.num_layers

    def __getitem__(self, index: int) -> LayerView:
        if not -self.num_layers <= index < self.num_layers:
            raise IndexError(f"layer {index} of a {self.num_layers}-layer model")
        return LayerView(self, index % self.num_layers)


class CausalLM(nnx.Module):
    """A rhojax causal LM as a Flax NNX module; ``config`` is static, the Params are the weights.

    ``model(tokens)`` gives logits ``(..., T, V)`` for tokens ``(..., T)`` (with ``return_hidden``
    also ``h_0..h_L``), exactly :func:`rhojax.models.forward` on :func:`to_params` of the module.
    """

    def __init__(self, config: ModelConfig, params: dict):
        self.config = config
        layers_path = _LAYERS[config.family]
        for path, dotted in module_paths(config).items():
            *parents, leaf = dotted.split(".")
            node = self
            for depth, name in enumerate(parents):
                if not hasattr(node, name):
                    here = ".".join(parents[: depth + 1])
                    cls = _LEAF_CLASS.get(leaf, Node) if depth == len(parents) - 1 else Node
                    child = Layers() if here == layers_path else cls()
                    if here == layers_path:
                        child.num_layers = config.num_layers
                    setattr(node, name, child)
                node = getattr(node, name)
            variable = LayerFlag if path == "blocks/sliding" else nnx.Param
            setattr(node, leaf, variable(param_at(params, path)))

    def __call__(self, tokens: jax.Array, *, return_hidden: bool = False):
        return forward(self.config, to_params(self)[1], tokens, return_hidden=return_hidden)


def _param(module: nnx.Module, dotted: str) -> nnx.Variable:
    node = module
    for name in dotted.split("."):
        node = getattr(node, name)
    return node


def from_params(config: ModelConfig, params: dict) -> CausalLM:
    """The NNX module tree of ``(config, params)``; its Params hold ``params``' arrays (no copy)."""
    return CausalLM(config, params)


def from_pretrained(spec: str, *, dtype: str = "float32") -> CausalLM:
    """Load ``spec`` (packaged name, Hugging Face folder, ``.gguf`` file or rhojax checkpoint) into Flax."""
    from rhojax.io.resolve import load_model

    model = load_model(spec, dtype=dtype)
    return from_params(model.config, model.params)


def to_params(module: CausalLM) -> tuple[ModelConfig, dict]:
    """``(config, params)`` holding the module's current arrays (the inverse of :func:`from_params`)."""
    params: dict = {}
    for path, dotted in module_paths(module.config).items():
        *parents, leaf = path.split("/")
        node = params
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _param(module, dotted)[...]
    return module.config, params


def _split_layer(module: CausalLM, dotted: str) -> tuple[str, int | None]:
    """``("model.layers.self_attn.q_proj.kernel", 3)`` for ``"model.layers.3.self_attn.q_proj.kernel"``."""
    layers = _LAYERS[module.config.family]
    if not dotted.startswith(layers + "."):
        return dotted, None
    head, _, rest = dotted[len(layers) + 1 :].partition(".")
    if not head.isdigit():
        return dotted, None
    layer = int(head)
    if layer >= module.config.num_layers:
        raise RhojaxError(f"{dotted}: layer {layer} of a {module.config.num_layers}-layer model")
    return f"{layers}.{rest}", layer


def get(module: CausalLM, dotted: str) -> jax.Array:
    """The array at a dotted name; a layer number after ``layers``/``h`` selects that layer's slice."""
    path, layer = _split_layer(module, dotted)
    try:
        value = _param(module, path)[...]
    except AttributeError:
        raise RhojaxError(f"{dotted}: no such parameter; see rhojax.flax.module_paths(config)") from None
    return value if layer is None else value[layer]


def set_(module: CausalLM, dotted: str, value: jax.Array) -> None:
    """Write ``value`` at a dotted name (into the layer slice when the name carries a layer number)."""
    path, layer = _split_layer(module, dotted)
    param = _param(module, path)
    new = jnp.asarray(value, param[...].dtype)
    if layer is not None:
        new = param[...].at[layer].set(new)
    if new.shape != param[...].shape:
        raise RhojaxError(f"{dotted}: shape {new.shape}, the parameter has {param[...].shape}")
    param[...] = new


def layer_mask(module: CausalLM, layers: list[int]) -> nnx.State:
    """A pytree like ``nnx.state(module, nnx.Param)``: 1 on the rows of ``layers`` of stacked Params,
    0 elsewhere (and 0 on the Params outside the stack). Multiply updates by it to train those layers."""
    stack = _LAYERS[module.config.family].split(".")
    selected = jnp.zeros(module.config.num_layers).at[jnp.asarray(layers, jnp.int32)].set(1.0)

    def mask(path, value):
        inside = tuple(str(p) for p in path[: len(stack)]) == tuple(stack)
        if not inside:
            return jnp.zeros_like(value)
        return jnp.broadcast_to(selected.reshape(-1, *([1] * (value.ndim - 1))), value.shape).astype(value.dtype)

    return nnx.map_state(mask, nnx.state(module, nnx.Param))


def masked(tx: optax.GradientTransformation, mask) -> optax.GradientTransformation:
    """``tx`` with its updates multiplied by ``mask`` (a pytree of 0/1 like the params): masked-out
    entries never move, whatever the optimizer (weight decay included)."""

    def update(updates, state, params=None):
        updates, state = tx.update(updates, state, params)
        return jax.tree.map(lambda u, m: u * m, updates, mask), state

    return optax.GradientTransformation(tx.init, update)
