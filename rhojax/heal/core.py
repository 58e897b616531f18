"""Recovery training after compression ("healing"), with optax, on the calibration split only.

The compressed weights ``W`` stay frozen; what trains is small:

- ``mode="norms"``: every norm scale and bias and every linear bias (``blocks/*/scale``, ``*/bias``,
  ``*/b`` and the final norm). The weights are untouched, so pruned zeros and quantized grids are
  kept trivially.
- ``mode="lora"``: low-rank adapters ``A`` (L, in, r), ``B`` (L, r, out) on the chosen ``kinds``; the
  healed weight is ``W' = W + M * (A @ B)`` with ``M = [W != 0]`` the kept-weight mask, so a pruned
  weight stays exactly zero (masked update). With ``quant_bits`` the weights were RTN-quantized
  (:func:`rhojax.compress.quantize.rtn_quantize`): ``W'`` is rounded back onto ``W``'s own grid,
  ``s * clip(round(W' / s), -qmax, qmax)`` with the step ``s`` read off ``W`` (its largest entry of
  each group sits at ``qmax * s``), so every weight stays on its grid. ``B`` starts at zero, so
  training starts from the compressed model exactly.

Loss: mean next-token NLL of ``(N, T)`` calibration windows, a batch of ``batch_size`` windows per
step in an order drawn from ``seed`` (a new permutation each epoch). Optimizer: AdamW with linear
warm-up then cosine decay to zero (``optax.warmup_cosine_decay_schedule``). With a ``state_dir``,
the adapter/optimizer state and step are saved with orbax every ``save_every`` steps, and a rerun
resumes from the last save and reaches the same result.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rhojax.compress.quantize import quantization_step
from rhojax.errors import RhojaxError
from rhojax.eval.perplexity import token_nll
from rhojax.models.config import SITE_KINDS, ModelConfig
from rhojax.models.transformer import forward

MODES = ("norms", "lora")
#: A model counts as pruned when at least this fraction of its block weights is exactly zero.
MIN_ZERO_FRACTION = 0.01


@dataclasses.dataclass(frozen=True)
class HealSettings:
    """What trains and how; saved with the results."""

    mode: str = "lora"
    rank: int = 8
    kinds: tuple[str, ...] = SITE_KINDS
    steps: int = 200
    learning_rate: float = 2e-4
    warmup_steps: int = 20
    weight_decay: float = 0.0
    batch_size: int = 4
    seed: int = 0
    quant_bits: int | None = None
    group_size: int | None = None
    save_every: int = 50


def check_settings(config: ModelConfig, settings: HealSettings) -> None:
    """One-line errors for an unknown mode or kind, a bad rank or step count."""
    if settings.mode not in MODES:
        raise RhojaxError(f"mode {settings.mode!r}: choose {' or '.join(MODES)}")
    if settings.steps < 1 or settings.batch_size < 1:
        raise RhojaxError(f"steps ({settings.steps}) and batch_size ({settings.batch_size}) must be at least 1")
    if settings.mode == "lora":
        unknown = [k for k in settings.kinds if k not in config.site_kinds]
        if unknown or not settings.kinds:
            raise RhojaxError(f"kinds {', '.join(map(repr, unknown)) or '(none)'}: choose from "
                              f"{', '.join(config.site_kinds)}")
        for kind in settings.kinds:
            limit = min(config.site_shape(kind))
            if not 1 <= settings.rank <= limit:
                raise RhojaxError(f"rank {settings.rank}: must be in [1, {limit}] for the {kind} matrices")


def zero_fraction(config: ModelConfig, params: dict) -> float:
    """Fraction of exactly-zero entries over all block weight matrices."""
    zeros = sum(int((params["blocks"][k]["w"] == 0).sum()) for k in config.site_kinds)
    return zeros / sum(int(params["blocks"][k]["w"].size) for k in config.site_kinds)


def check_compressed(config: ModelConfig, params: dict, *, dense_layers: int | None = None,
                     quant_bits: int | None = None) -> dict:
    """What compression ``params`` carry, or a :class:`RhojaxError` if none is visible.

    Pruning shows as exact zeros (at least :data:`MIN_ZERO_FRACTION`), depth pruning as fewer layers
    than ``dense_layers``, quantization is declared with ``quant_bits``.
    """
    zeros = zero_fraction(config, params)
    removed = 0 if dense_layers is None else dense_layers - config.num_layers
    if zeros < MIN_ZERO_FRACTION and removed <= 0 and quant_bits is None:
        raise RhojaxError(
            f"the model is not compressed ({zeros:.1%} zero weights, no layers removed, no quant_bits): heal "
            "recovers a pruned or quantized model, e.g. the model/ folder of `rhojax allocate --save-model`"
        )
    return {"zero_fraction": zeros, "layers_removed": removed, "quant_bits": quant_bits}


def _is_norm_or_bias(path: tuple) -> bool:
    return path[-1].key in ("scale", "bias", "b")


def _name(path: tuple) -> str:
    return ".".join(p.key for p in path)


def init_trainable(config: ModelConfig, params: dict, settings: HealSettings, key: jax.Array) -> dict:
    """The trainable pytree: norm scales/biases (mode norms) or ``{kind: {"a", "b"}}`` adapters (lora)."""
    if settings.mode == "norms":
        return {_name(p): v for p, v in jax.tree_util.tree_leaves_with_path(params) if _is_norm_or_bias(p)}
    adapters = {}
    for kind, k in zip(settings.kinds, jax.random.split(key, len(settings.kinds)), strict=True):
        fan_in, fan_out = config.site_shape(kind)
        a = jax.random.normal(k, (config.num_layers, fan_in, settings.rank), jnp.float32) / np.sqrt(fan_in)
        adapters[kind] = {"a": a, "b": jnp.zeros((config.num_layers, settings.rank, fan_out), jnp.float32)}
    return adapters


def _on_grid(w_new: jax.Array, w: jax.Array, bits: int, group_size: int | None) -> jax.Array:
    """``w_new`` rounded onto the RTN grid of ``w`` (one stacked layer axis), zero where ``w``'s step is 0."""
    qmax = 2 ** (bits - 1) - 1
    step = jax.vmap(lambda m: quantization_step(m, bits, group_size=group_size))(w)
    safe = jnp.where(step > 0, step, 1.0)
    return jnp.where(step > 0, jnp.clip(jnp.round(w_new / safe), -qmax, qmax) * safe, 0.0).astype(w.dtype)


def merge(config: ModelConfig, params: dict, trainable: dict, settings: HealSettings) -> dict:
    """The full params with ``trainable`` applied (see the module docstring for the formula)."""
    if settings.mode == "norms":
        return jax.tree_util.tree_map_with_path(
            lambda p, v: trainable[_name(p)] if _is_norm_or_bias(p) else v, params)
    blocks = dict(params["blocks"])
    for kind, ad in trainable.items():
        w = blocks[kind]["w"]
        new = w + jnp.where(w != 0, jnp.einsum("lir,lro->lio", ad["a"], ad["b"]), 0.0).astype(w.dtype)
        if settings.quant_bits is not None:
            new = _on_grid(new, w, settings.quant_bits, settings.group_size)
        blocks[kind] = {**blocks[kind], "w": new}
    return {**params, "blocks": blocks}


def calibration_loss(config: ModelConfig, params: dict, tokens: jax.Array) -> jax.Array:
    """Mean next-token NLL of ``tokens`` (B, T)."""
    return token_nll(forward(config, params, tokens), tokens).mean()


def optimizer(settings: HealSettings) -> optax.GradientTransformation:
    """AdamW with linear warm-up to ``learning_rate`` then cosine decay to 0 over ``steps``."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, settings.learning_rate, min(settings.warmup_steps, settings.steps - 1), settings.steps)
    return optax.adamw(schedule, weight_decay=settings.weight_decay)


@functools.partial(jax.jit, static_argnames=("config", "settings"))
def train_step(config: ModelConfig, settings: HealSettings, params: dict, trainable: dict, opt_state, tokens):
    """One AdamW step on ``trainable``; returns ``(trainable, opt_state, loss before the step)``."""
    loss, grads = jax.value_and_grad(
        lambda t: calibration_loss(config, merge(config, params, t, settings), tokens))(trainable)
    updates, opt_state = optimizer(settings).update(grads, opt_state, trainable)
    return optax.apply_updates(trainable, updates), opt_state, loss


def batch_order(num_windows: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """Window indices (steps, batch_size): a fresh permutation of the windows each epoch."""
    if batch_size > num_windows:
        raise RhojaxError(f"batch_size {batch_size} exceeds the {num_windows} calibration windows")
    per_epoch = num_windows // batch_size
    rng = np.random.default_rng(seed)
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(num_windows)[: per_epoch * batch_size] for _ in range(epochs)])
    return order.reshape(-1, batch_size)[:steps]


@dataclasses.dataclass(frozen=True)
class HealResult:
    """What :func:`heal` returns: the healed model's ``params`` (``trainable`` merged in by :func:`merge`), the
    ``trainable`` pytree the mode trained, the training ``losses`` of the steps run in this call, and
    ``start_step``, the step it started from (0, or where a resumed run picked up)."""

    params: dict
    trainable: dict
    losses: list[float]  # training loss of every step run in this call (resumed steps excluded)
    start_step: int  # 0, or the step a resumed run started from


def _state_manager(state_dir: Path):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=1)
    return ocp.CheckpointManager(Path(state_dir).absolute(), options=options)


def heal(
    config: ModelConfig,
    params: dict,
    calibration: np.ndarray,
    settings: HealSettings,
    *,
    state_dir: str | Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> HealResult:
    """Train ``settings.mode`` on ``calibration`` windows (N, T) and return the healed params."""
    import orbax.checkpoint as ocp

    check_settings(config, settings)
    windows = np.asarray(calibration, np.int32)
    order = batch_order(len(windows), settings.batch_size, settings.steps, settings.seed)
    trainable = init_trainable(config, params, settings, jax.random.PRNGKey(settings.seed))
    opt_state = optimizer(settings).init(trainable)
    start = 0
    manager = None
    if state_dir is not None:
        manager = _state_manager(state_dir)
        latest = manager.latest_step()
        if latest is not None:
            target = jax.eval_shape(lambda: {"trainable": trainable, "opt_state": opt_state})
            restored = manager.restore(latest, args=ocp.args.StandardRestore(target))
            trainable, opt_state, start = restored["trainable"], restored["opt_state"], int(latest)
    losses = []
    try:
        for step in range(start, settings.steps):
            trainable, opt_state, loss = train_step(config, settings, params, trainable, opt_state,
                                                    jnp.asarray(windows[order[step]]))
            losses.append(float(loss))
            if on_step is not None:
                on_step(step + 1, losses[-1])
            done = step + 1
            if manager is not None and (done % settings.save_every == 0 or done == settings.steps):
                manager.save(done, args=ocp.args.StandardSave({"trainable": trainable, "opt_state": opt_state}))
                manager.wait_until_finished()
    finally:
        if manager is not None:
            manager.close()
    return HealResult(merge(config, params, trainable, settings), trainable, losses, start)
