"""Model configuration shared by every family.

A config is a frozen, hashable dataclass so it can be a static argument of `jax.jit`
(``jax.jit(f, static_argnames="config")``). It is also registered as a pytree *without leaves* (the
whole config is static aux data), so it may be passed to a user's ``jax.jit``/``jax.vmap``/``jax.grad``
as an ordinary argument, alone or inside a tuple ``(config, params)``: JAX then treats it as static
and recompiles only for a different config.
Three families cover every supported architecture:

- ``"llama"``: pre-RMSNorm blocks with RoPE and a gated SiLU MLP. LLaMA-2/3 (with llama3
  RoPE scaling), Mistral, Qwen2/2.5 (``qkv_bias``) and Qwen3 (``qk_norm``) are settings of it.
- ``"gpt2"``: pre-LayerNorm blocks, learned positions, GELU (tanh) MLP, biases everywhere.
- ``"gemma3"``: Gemma 3 text models. Differences from llama: RMSNorm before *and* after attention
  and MLP ("sandwich"), GeGLU MLP (tanh GELU gate), embeddings scaled by ``sqrt(hidden_size)``,
  q/k RMSNorm, attention scores scaled by ``query_pre_attn_scalar ** -0.5``, and interleaved
  sliding-window (local) and global layers with their own RoPE bases (``rope_local_theta`` for
  local layers). Which layer is local is per-layer data in the params (``blocks/sliding``), so the
  stack stays one ``lax.scan`` and survives layer deletion. Gemma's ``(1 + w)`` norm weights are
  stored as the effective scale ``1 + w`` by the loaders, so every family shares one RMSNorm.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax

Family = Literal["llama", "gpt2", "gemma3"]

#: The canonical weight-matrix vocabulary. GPT-2 maps ``c_attn`` to q/k/v, ``attn.c_proj`` to o,
#: ``c_fc`` to up and ``mlp.c_proj`` to down; it has no gate.
SITE_KINDS: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """LLaMA-3 style frequency-dependent RoPE scaling (``rope_type: llama3``)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters. Linear weights are stored as ``(in, out)`` and applied as ``x @ W``."""

    family: Family
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    norm_eps: float
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    tie_embeddings: bool = False
    qkv_bias: bool = False
    #: A bias on the attention output projection (HF ``attention_bias`` of llama/qwen3/gemma3).
    o_bias: bool = False
    qk_norm: bool = False
    sliding_window: int | None = None
    #: Per-frequency RoPE divisors (hd/2 values): llama.cpp's encoding of llama3 or linear scaling
    #: (a GGUF ``rope_freqs`` tensor or ``rope.scaling.*`` keys). Global layers only for gemma3.
    rope_freq_factors: tuple[float, ...] | None = None
    #: gemma3: attention scores are scaled by ``query_pre_attn_scalar ** -0.5`` (``None``: head_dim).
    query_pre_attn_scalar: float | None = None
    #: gemma3: RoPE base of the sliding-window (local) layers.
    rope_local_theta: float | None = None
    #: gemma3: every ``sliding_window_pattern``-th layer is global, the others local (used to build
    #: ``blocks/sliding`` at load/init time when the checkpoint does not list its layer types).
    sliding_window_pattern: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                 "intermediate_size")
        bad = [f"{name}={getattr(self, name)!r}" for name in sizes
               if type(getattr(self, name)) is not int or getattr(self, name) < 1]
        if bad:
            raise ValueError(f"model sizes must be positive integers: {', '.join(bad)}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.family == "gemma3" and (self.sliding_window is None or self.rope_local_theta is None):
            raise ValueError("a gemma3 config needs sliding_window and rope_local_theta")
        if self.rope_freq_factors is not None and len(self.rope_freq_factors) != self.head_dim // 2:
            raise ValueError(f"rope_freq_factors needs head_dim / 2 = {self.head_dim // 2} values")

    @property
    def site_kinds(self) -> tuple[str, ...]:
        """Weight-matrix kinds present in each block of this family."""
        return SITE_KINDS if self.family != "gpt2" else tuple(k for k in SITE_KINDS if k != "gate")

    @property
    def attention_scale(self) -> float:
        """Multiplier of the attention scores ``q . k``: ``query_pre_attn_scalar ** -0.5`` or ``head_dim ** -0.5``."""
        return (self.query_pre_attn_scalar or self.head_dim) ** -0.5

    def default_sliding_layers(self) -> tuple[bool, ...]:
        """gemma3 layer types from ``sliding_window_pattern``: layer ``i`` is global iff ``(i + 1) % pattern == 0``."""
        pattern = self.sliding_window_pattern
        return tuple(pattern is not None and (i + 1) % pattern != 0 for i in range(self.num_layers))

    @property
    def sites(self) -> list[tuple[int, str]]:
        """Every weight matrix of the block stack as ``(layer, kind)``."""
        return [(layer, kind) for layer in range(self.num_layers) for kind in self.site_kinds]

    @property
    def q_size(self) -> int:
        """Width of the concatenated query heads, ``num_heads * head_dim``."""
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of the concatenated key (or value) heads, ``num_kv_heads * head_dim``."""
        return self.num_kv_heads * self.head_dim

    def site_shape(self, kind: str) -> tuple[int, int]:
        """``(in, out)`` shape of the weight matrix of ``kind``."""
        d, f = self.hidden_size, self.intermediate_size
        shapes = {
            "q": (d, self.q_size),
            "k": (d, self.kv_size),
            "v": (d, self.kv_size),
            "o": (self.q_size, d),
            "gate": (d, f),
            "up": (d, f),
            "down": (f, d),
        }
        if kind not in self.site_kinds:
            raise ValueError(f"unknown site kind {kind!r}; this model has {', '.join(self.site_kinds)}")
        return shapes[kind]

    def replace(self, **changes) -> ModelConfig:
        """A copy with ``changes`` applied (``config.replace(num_layers=20)``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field as plain data (for JSON); :meth:`from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """The config written by :meth:`to_dict`."""
        d = dict(d)
        if d.get("rope_scaling") is not None:
            d["rope_scaling"] = RopeScaling(**d["rope_scaling"])
        if d.get("rope_freq_factors") is not None:
            d["rope_freq_factors"] = tuple(d["rope_freq_factors"])
        return cls(**d)


jax.tree_util.register_pytree_node(ModelConfig, lambda config: ((), config), lambda config, _: config)
