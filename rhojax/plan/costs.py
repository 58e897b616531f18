"""Honest cost accounting of one block matrix under one action, relative to the dense bfloat16 matrix.

A matrix ``W`` (in, out) has ``n = in * out`` weights. Per token of forward pass, the dense matrix costs
``2 n`` FLOPs (one multiply and one add per weight) and stores ``2 n`` bytes in bfloat16. Each action
costs (``params``: non-zero parameters stored; ``flops`` per token on DENSE hardware; ``bytes`` stored,
every piece of metadata included):

================================ ======================= ================== ==================================
action                           params                  flops              bytes
================================ ======================= ================== ==================================
dense                            ``n``                   ``2 n``            ``2 n``
unstructured, sparsity ``s``     ``k = n - round(s n)``  ``2 n``            ``2 k + n / 8`` (values + bit mask)
N:M (keep N of every M)          ``k = n N / M``         ``2 k``            ``2 k + k ceil(log2 M) / 8``
rank ``r``                       ``r (in + out)``        ``2 r (in + out)`` ``2 r (in + out)`` (both factors)
RTN ``b`` bits, group ``g``      ``n``                   ``2 n``            ``n b / 8 + 2 n / g``
removed with its block           0                       0                  0
================================ ======================= ================== ==================================

N:M stores a ``ceil(log2 M)``-bit index with each kept value (2 bits for 2:4); RTN one bfloat16 scale per group.

RTN here is symmetric, so it stores no zero point; ``g = None`` means one group per output channel
(``g = in``). Unstructured sparsity saves no FLOPs because dense hardware multiplies the zeros; N:M
saves them on hardware with sparse tensor cores (2:4), low rank and removal everywhere. FLOPs count
the weight matrices only (the attention score and softmax FLOPs, which depend on the sequence length,
are not part of any budget). A budget fraction is always relative to the dense bfloat16 cost of the
same set of matrices (every block matrix of the model; embeddings, norms and the output head are
neither counted nor compressed).
"""

from __future__ import annotations

import dataclasses
import math

from rhojax.errors import RhojaxError

#: The budget units a plan target can name.
UNITS: tuple[str, ...] = ("params", "flops", "bytes")
#: Bytes per stored bfloat16 value (weights, low-rank factors, quantization scales).
BF16_BYTES = 2


@dataclasses.dataclass(frozen=True)
class Cost:
    """Absolute cost: non-zero parameters, forward FLOPs per token (dense hardware) and stored bytes."""

    params: float
    flops: float
    bytes: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.params + other.params, self.flops + other.flops, self.bytes + other.bytes)

    def get(self, unit: str) -> float:
        """The cost in ``unit`` (one of :data:`UNITS`)."""
        if unit not in UNITS:
            raise RhojaxError(f"cost unit {unit!r}: choose one of {', '.join(UNITS)}")
        return float(getattr(self, unit))

    def fraction(self, dense: Cost) -> dict[str, float]:
        """This cost as a fraction of ``dense`` in every unit."""
        return {u: self.get(u) / dense.get(u) for u in UNITS}


ZERO = Cost(0.0, 0.0, 0.0)


def dense_cost(shape: tuple[int, int]) -> Cost:
    """The dense bfloat16 matrix: ``n`` params, ``2 n`` FLOPs per token, ``2 n`` bytes."""
    n = shape[0] * shape[1]
    return Cost(n, 2.0 * n, BF16_BYTES * n)


def unstructured_cost(shape: tuple[int, int], sparsity: float) -> Cost:
    """Unstructured sparsity: bf16 kept values plus a one-bit mask per weight; no FLOPs saved."""
    n = shape[0] * shape[1]
    kept = n - round(sparsity * n)
    return Cost(kept, 2.0 * n, BF16_BYTES * kept + n / 8)


def nm_cost(shape: tuple[int, int], nm: tuple[int, int]) -> Cost:
    """N:M sparsity: ``N/M`` of the weights kept and multiplied, each with a ``ceil(log2 M)``-bit index."""
    n_keep, m = nm
    kept = shape[0] * shape[1] * n_keep / m
    return Cost(kept, 2.0 * kept, BF16_BYTES * kept + kept * math.ceil(math.log2(m)) / 8)


def lowrank_cost(shape: tuple[int, int], rank: int) -> Cost:
    """Rank ``r``: two bf16 factors (in, r) and (r, out), applied one after the other."""
    size = rank * (shape[0] + shape[1])
    return Cost(size, 2.0 * size, BF16_BYTES * size)


def rtn_cost(shape: tuple[int, int], bits: int, group_size: int | None) -> Cost:
    """``bits``-bit symmetric RTN: packed integers plus one bf16 scale per group of ``group_size`` inputs."""
    n = shape[0] * shape[1]
    groups = n / (shape[0] if group_size is None else group_size)
    return Cost(n, 2.0 * n, n * bits / 8 + BF16_BYTES * groups)
