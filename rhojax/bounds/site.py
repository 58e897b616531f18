"""Site bounds: how much one compressed matrix can change its block's output, from the clean forward pass.

For a pre-norm llama block ``a = h + attn(n1(h))``, ``B = a + mlp(n2(a))`` with
``mlp(y) = (silu(y W_gate) * (y W_up)) W_down`` (weights stored (in, out), activations (tokens, in)),
compress ONE matrix ``W -> W'`` and write ``E = W' - W``. Per token ``t`` (norms are Euclidean over
the features; ``S(A)`` is a certified upper bound of the spectral norm ``||A||_2``, :func:`spectral_upper`):

- ``down``: ``||dB_t|| = ||m_t E||`` with ``m = silu(y W_gate) * (y W_up)`` (linear: exact).
- ``up``:   ``||dB_t|| <= S(W_down) ||g_t * (y_t E)||`` with ``g = silu(y W_gate)``.
- ``gate``: ``||dB_t|| <= S(W_down) L ||u_t * (y_t E)||`` with ``u = y W_up`` and ``L = 1.1 >= sup|silu'|``.
- attention kinds bound the change ``delta_t >= ||da_t||`` of the attention output, then add the MLP's
  response through the second norm: ``||dB_t|| <= delta_t + M_t(delta_t)``. RMSNorm without its scale,
  ``r(a) = a / rms(a)`` with ``rms(a) = sqrt(|a|^2 / D + eps)``, moves by at most
  ``||a' - a|| / min(rms(a), rms(a'))`` (``rmsnorm_step`` in ``coq/Site.v``) and ``|r(a)| < sqrt(D)``, so
  ``||d r_t|| <= N_t = min(delta_t / rms_t, 2 sqrt(D))`` with ``rms_t = sqrt(max(0, ||a_t|| - delta_t)^2 / D + eps)``
  (both ``||a_t||`` and ``||a'_t||`` are at least ``||a_t|| - delta_t``). The norm's
  scale ``gamma`` is folded into the next weights (``G = diag(gamma) W_gate``, ``U = diag(gamma) W_up``), and
  ``M_t = S(W_down) (L S(G) N_t (max|u_t| + S(U) N_t) + max|g_t| S(U) N_t)`` (the gated product moves
  by ``ds * u' + g * du``, with ``|u'| <= |u| + |du|``).

  - ``o``: ``delta_t = ||o_t E||`` (``o``: the concatenated head outputs).
  - ``v``: head ``j`` of kv-group ``c`` mixes value errors with its attention row (row sums 1):
    ``||do_tj|| <= sum_s P_j[t, s] ||x_s E_c||``; ``delta_t = S(W_o) sqrt(sum_j ||do_tj||^2)``.
  - ``q`` / ``k``: the logit change ``dz_tj`` (T,) is linear in ``E`` given the clean keys (queries):
    ``dz_ts = rope_t(x_t E_j) . k_s / sqrt(hd)`` (q) or ``q_tj . rope_s(x_s E_c) / sqrt(hd)`` (k). On the
    segment, softmax's Jacobian ``diag(p) - p p^T`` maps it to an l1 change
    ``sum_s p_s |dz_s - p . dz| <= osc(dz) = max_s dz_s - min_s dz_s``, and two distributions differ by at
    most 2 in l1, so ``sum_s |dP_s| <= min(osc_tj, 2)``; since ``sum_s dP_s = 0``,
    ``||do_tj|| <= min(osc_tj, 2) max_{s<=t} ||v_sc - o_tj||``; ``delta_t`` as for ``v``.

Over the tokens the bound is ``sqrt(sum_t b_t^2) >= ||dB||_F``. The Coq development proves the vector
steps (``coq/Site.v``, ``coq/Norms.v``: Schur test, elementwise products, convex mixing, the softmax
derivative step, the RMSNorm step, tokens to Frobenius); the integral along the segment that turns the
softmax derivative bound into a bound on the change, and the Gram-iteration bound, are argued here,
not in Coq. :func:`block_forward` is a float64 NumPy copy of ``rhojax.models.transformer.block``
(tested against it), so the measured change ``||B(W') - B(W)||_F`` is free of float32 round-off.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rhojax.bounds.activations import ACTIVATIONS
from rhojax.errors import RhojaxError
from rhojax.models.config import ModelConfig
from rhojax.models.transformer import rope_frequencies

SILU, SILU_LIPSCHITZ = ACTIVATIONS["silu"]
#: Kinds with a site bound, attention first.
SITE_KINDS = ("q", "k", "v", "o", "gate", "up", "down")
#: The clean matrices whose spectral norms enter the bounds.
NORMED_KINDS = ("o", "gate", "up", "down")


def schur_bound(w: np.ndarray) -> float:
    """``sqrt(max_i sum_j |w_ij| * max_j sum_i |w_ij|) >= ||w||_2`` (Schur test, ``coq/Norms.v``)."""
    a = np.abs(np.asarray(w, np.float64))
    return float(np.sqrt(a.sum(axis=1).max() * a.sum(axis=0).max()))


def gram_bound(w: np.ndarray, iterations: int = 6) -> float:
    """Gram iteration: ``||w||_2 <= ||G_k||_F^(1/2^k)`` with ``G_0 = w``, ``G_{i+1} = G_i^T G_i``, because
    ``sigma_max(G_k) = sigma_max(w)^(2^k)`` and ``sigma_max <= ||.||_F``. Each ``G_i`` is rescaled by its
    Frobenius norm (tracked in log space), so nothing overflows. An upper bound that tightens
    with ``k``, unlike power iteration, which only gives lower bounds."""
    g = np.asarray(w, np.float64)
    if g.shape[0] < g.shape[1]:
        g = g.T  # same singular values; G_1 is the smaller Gram matrix
    log_scale = 0.0
    for _ in range(iterations):
        n = np.linalg.norm(g)
        if n == 0:
            return 0.0
        g = g / n
        log_scale = 2 * (log_scale + np.log(n))
        g = g.T @ g
    return float(np.exp((log_scale + np.log(np.linalg.norm(g))) / 2**iterations))


def spectral_upper(w: np.ndarray) -> float:
    """A certified upper bound of ``||w||_2``: the least of Frobenius, Schur test and Gram iteration."""
    return min(float(np.linalg.norm(np.asarray(w, np.float64))), schur_bound(w), gram_bound(w))


@dataclasses.dataclass(frozen=True)
class CleanBlock:
    """Every intermediate of one block on one window (float64), shapes for T tokens, H heads of size hd,
    C kv groups, D features and F MLP features: ``h, x, a, y, out`` (T, D); ``q`` (T, H, hd), ``k, v``
    (T, C, hd) after RoPE; ``probs`` (H, T, T); ``heads`` (T, H, hd) = ``probs @ v``; ``o`` (T, H hd);
    ``gate_pre, up, m`` (T, F)."""

    h: np.ndarray
    x: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    probs: np.ndarray
    heads: np.ndarray
    o: np.ndarray
    a: np.ndarray
    y: np.ndarray
    gate_pre: np.ndarray
    up: np.ndarray
    m: np.ndarray
    out: np.ndarray


def check_supported(config: ModelConfig) -> None:
    """Site bounds cover the llama family without q/k norms or sliding windows."""
    if config.family != "llama" or config.qk_norm or config.sliding_window is not None:
        raise RhojaxError(f"site bounds cover llama blocks without qk_norm or a sliding window; "
                          f"{config.name or config.family} is not one")


def _rms_norm(x: np.ndarray, scale: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def _rope(x: np.ndarray, inv_freq: np.ndarray) -> np.ndarray:
    """Half-split RoPE of ``x`` (T, heads, hd) at positions ``0..T-1``."""
    angles = np.arange(x.shape[0], dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    x1, x2 = np.split(x, 2, axis=-1)
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _linear(p: dict, kind: str, x: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    y = x @ weights[kind]
    return y + np.asarray(p[kind]["b"], np.float64) if "b" in p[kind] else y


def block_forward(config: ModelConfig, p: dict, h: np.ndarray, replace: dict[str, np.ndarray] | None = None
                  ) -> CleanBlock:
    """The block on one window ``h`` (T, D) in float64, with ``replace`` (kind -> (in, out) weight)
    substituted for the layer's own weights ``p`` (one layer's params, as ``block_params`` gives)."""
    check_supported(config)
    weights = {kind: np.asarray(p[kind]["w"], np.float64) for kind in SITE_KINDS}
    weights.update({kind: np.asarray(w, np.float64) for kind, w in (replace or {}).items()})
    h = np.asarray(h, np.float64)
    t, hd, heads, groups = h.shape[0], config.head_dim, config.num_heads, config.num_kv_heads
    inv_freq = np.asarray(rope_frequencies(config), np.float64)
    x = _rms_norm(h, np.asarray(p["attn_norm"]["scale"], np.float64), config.norm_eps)
    q = _rope(_linear(p, "q", x, weights).reshape(t, heads, hd), inv_freq)
    k = _rope(_linear(p, "k", x, weights).reshape(t, groups, hd), inv_freq)
    v = _linear(p, "v", x, weights).reshape(t, groups, hd)
    group_of = np.arange(heads) // (heads // groups)
    logits = np.einsum("thd,shd->hts", q, k[:, group_of]) / np.sqrt(hd)
    logits = np.where(np.tril(np.ones((t, t), bool))[None], logits, -np.inf)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    head_out = np.einsum("hts,shd->thd", probs, v[:, group_of])
    o = head_out.reshape(t, heads * hd)
    a = h + _linear(p, "o", o, weights)
    y = _rms_norm(a, np.asarray(p["mlp_norm"]["scale"], np.float64), config.norm_eps)
    gate_pre, up = _linear(p, "gate", y, weights), _linear(p, "up", y, weights)
    m = SILU(gate_pre) * up
    return CleanBlock(h, x, q, k, v, probs, head_out, o, a, y, gate_pre, up, m, a + _linear(p, "down", m, weights))


def _rows(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a, axis=-1)


def _running_max(a: np.ndarray) -> np.ndarray:
    """``out[t] = max_{s <= t} a[s]`` along axis 0."""
    return np.maximum.accumulate(a, axis=0)


def mlp_response(config: ModelConfig, clean: CleanBlock, norms: dict[str, float], delta: np.ndarray
                 ) -> np.ndarray:
    """``delta_t + M_t(delta_t)``: the block-output change per token when the attention output of token
    ``t`` moves by at most ``delta_t`` (T,) (module docstring)."""
    d = clean.a.shape[-1]
    rms_low = np.sqrt(np.maximum(_rows(clean.a) - delta, 0.0) ** 2 / d + config.norm_eps)
    n = np.minimum(delta / rms_low, 2 * np.sqrt(d))
    u_max = np.max(np.abs(clean.up), axis=-1)
    g_max = np.max(np.abs(SILU(clean.gate_pre)), axis=-1)
    gate, up = norms["scaled_gate"], norms["scaled_up"]
    return delta + norms["down"] * (SILU_LIPSCHITZ * gate * n * (u_max + up * n) + g_max * up * n)


def _head_errors(config: ModelConfig, clean: CleanBlock, kind: str, error: np.ndarray) -> np.ndarray:
    """``||do_tj||`` bounds (T, H) for a compressed q, k or v with weight error ``error`` (D, out)."""
    hd, heads, groups = config.head_dim, config.num_heads, config.num_kv_heads
    group_of = np.arange(heads) // (heads // groups)
    t = clean.x.shape[0]
    if kind == "v":
        local = _rows((clean.x @ error).reshape(t, groups, hd))[:, group_of]  # (T, H): ||x_s E_c||
        return np.einsum("hts,sh->th", clean.probs, local)
    inv_freq = np.asarray(rope_frequencies(config), np.float64)
    causal = np.tril(np.ones((t, t), bool))[:, :, None]  # (T, S, 1)
    if kind == "q":
        dq = _rope((clean.x @ error).reshape(t, heads, hd), inv_freq)
        dz = np.einsum("thd,shd->tsh", dq, clean.k[:, group_of]) / np.sqrt(hd)
    else:  # k
        dk = _rope((clean.x @ error).reshape(t, groups, hd), inv_freq)
        dz = np.einsum("thd,shd->tsh", clean.q, dk[:, group_of]) / np.sqrt(hd)
    oscillation = np.where(causal, dz, -np.inf).max(axis=1) - np.where(causal, dz, np.inf).min(axis=1)  # (T, H)
    values = clean.v[:, group_of]  # (S, H, hd)
    spread = np.linalg.norm(values[None] - clean.heads[:, None], axis=-1)  # (T, S, H): ||v_s - o_t||
    spread = np.where(causal, spread, 0.0).max(axis=1)
    return np.minimum(oscillation, 2.0) * spread


def site_bound(config: ModelConfig, p: dict, clean: CleanBlock, kind: str, w2: np.ndarray,
               norms: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-token upper bounds (T,) of ``||B(W')_t - B(W)_t||`` when ``p[kind]`` is replaced by ``w2``, and of
    the change of the sublayer that holds the matrix (attention output ``a`` or MLP output).

    ``norms`` holds certified spectral upper bounds of the layer's clean matrices (:func:`layer_norms`)."""
    error = np.asarray(w2, np.float64) - np.asarray(p[kind]["w"], np.float64)
    if kind in ("gate", "up", "down"):
        if kind == "down":
            bound = _rows(clean.m @ error)
        elif kind == "up":
            bound = norms["down"] * _rows(SILU(clean.gate_pre) * (clean.y @ error))
        else:
            bound = norms["down"] * SILU_LIPSCHITZ * _rows(clean.up * (clean.y @ error))
        return bound, bound
    if kind == "o":
        delta = _rows(clean.o @ error)
    elif kind in ("q", "k", "v"):
        delta = norms["o"] * np.sqrt(np.sum(_head_errors(config, clean, kind, error) ** 2, axis=-1))
    else:
        raise RhojaxError(f"kind {kind!r} has no site bound; choose from {', '.join(SITE_KINDS)}")
    return mlp_response(config, clean, norms, delta), delta


def layer_norms(p: dict) -> dict[str, float]:
    """Certified spectral upper bounds of one layer's clean o, gate, up and down weights, and of gate and
    up after the MLP norm's scale (``diag(gamma) W``: ``scaled_gate``, ``scaled_up``)."""
    norms = {kind: spectral_upper(np.asarray(p[kind]["w"], np.float64)) for kind in NORMED_KINDS}
    gamma = np.asarray(p["mlp_norm"]["scale"], np.float64)[:, None]
    for kind in ("gate", "up"):
        norms[f"scaled_{kind}"] = spectral_upper(gamma * np.asarray(p[kind]["w"], np.float64))
    return norms


@dataclasses.dataclass(frozen=True)
class SiteCheck:
    """One site at one level over a set of windows: ``bound >= actual = ||dB||_F`` over all tokens, the
    same for the sublayer holding the matrix (``sublayer_*``), and the number of tokens whose own
    block bound is below their own change (``token_violations``)."""

    bound: float
    actual: float
    sublayer_bound: float
    sublayer_actual: float
    token_violations: int

    @property
    def holds(self) -> bool:
        return (self.actual <= self.bound * (1 + 1e-9) and self.sublayer_actual <= self.sublayer_bound * (1 + 1e-9)
                and self.token_violations == 0)


def _fro(rows: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum(r * r) for r in rows)))


def check_site(config: ModelConfig, p: dict, kind: str, w2: np.ndarray, windows: list[CleanBlock],
               norms: dict[str, float], bound_fn=site_bound) -> SiteCheck:
    """Evaluate the site bound against the change measured by running the block with ``w2`` (float64).

    ``bound_fn`` replaces :func:`site_bound` (to show that a wrong bound is caught)."""
    bounds, sub_bounds, actuals, sub_actuals, violations = [], [], [], [], 0
    for clean in windows:
        bound, sub_bound = bound_fn(config, p, clean, kind, w2, norms)
        new = block_forward(config, p, clean.h, {kind: w2})
        actual = _rows(new.out - clean.out)
        sub_actual = _rows(new.a - clean.a) if kind in ("q", "k", "v", "o") else actual
        violations += int(np.sum(actual > bound * (1 + 1e-9) + 1e-12 * _rows(clean.out)))
        bounds.append(bound), sub_bounds.append(sub_bound), actuals.append(actual), sub_actuals.append(sub_actual)
    return SiteCheck(_fro(bounds), _fro(actuals), _fro(sub_bounds), _fro(sub_actuals), violations)
