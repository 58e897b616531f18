"""Which Lean theorem is mirrored by which property test and which numeric twin.

``tests/test_bounds_manifest.py`` fails when a theorem in ``lean/`` lacks an entry here, when an
entry names a theorem, test or twin that does not exist, or when a twin or property test is not
listed.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Theorem:
    """One Lean theorem (``Rhojax.[NormedMaps.]name`` in ``lean_file``), its Hypothesis twin
    ``property_tests/<test_module>.py::test_<name>`` and its numeric twin ``rhojax.bounds.twins.<name>``."""

    name: str
    lean_file: str
    test_module: str
    statement: str

    @property
    def test_name(self) -> str:
        return f"test_{self.name}"

    @property
    def twin(self) -> str:
        return self.name


_MATRIX = ("lean/RhojaxBounds/Matrix.lean", "test_matrix_bounds")
_PROPAGATION = ("lean/RhojaxBounds/Propagation.lean", "test_propagation_bounds")
_COMPRESSION = ("lean/RhojaxBounds/Compression.lean", "test_compression_bounds")

THEOREMS: tuple[Theorem, ...] = (
    Theorem("weight_perturbation", *_MATRIX, "||W'x - Wx|| <= ||W' - W|| ||x||"),
    Theorem("relative_weight_perturbation", *_MATRIX, "||W' - W|| <= d ||W||  =>  ||W'x - Wx|| <= d ||W|| ||x||"),
    Theorem("weight_input_error", *_MATRIX, "||W'x' - Wx|| <= ||W'|| ||x' - x|| + ||W' - W|| ||x||"),
    Theorem("additive_composition", *_MATRIX, "||W2 x - W x|| <= (||W2 - W1|| + ||W1 - W||) ||x||"),
    Theorem("two_matrix_chain", *_MATRIX, "||B'A'x - BAx|| <= ||B'|| ||A' - A|| ||x|| + ||B' - B|| ||A|| ||x||"),
    Theorem(
        "lipschitz_activation_chain", *_MATRIX,
        "||B' s(A'x) - B s(Ax)|| <= ||B'|| L ||A' - A|| ||x|| + ||B' - B|| ||s(Ax)||",
    ),
    Theorem("residual_block", *_MATRIX, "F L-Lipschitz  =>  ||(u + Fu) - (v + Fv)|| <= (1 + L) ||u - v||"),
    Theorem("product_propagation", *_PROPAGATION, "a_{t+1} <= g_t a_t, g_t >= 0  =>  a_T <= (prod g) a_0"),
    Theorem(
        "geometric_series_bound", *_PROPAGATION,
        "a_{t+1} <= rho a_t + delta, rho c + delta <= c, a_0 <= c  =>  a_T <= c (c = max(a_0, delta/(1-rho)))",
    ),
    Theorem("lyapunov_monotone", *_PROPAGATION, "e1 <= beta e0, alpha h0 <= h1, beta <= alpha  =>  V_1 <= V_0"),
    Theorem(
        "magnitude_pruning_frobenius", *_COMPRESSION, "k pruned entries, |w| <= tau  =>  ||W - W'||_F^2 <= k tau^2"
    ),
    Theorem("rtn_rounding_bound", *_COMPRESSION, "|r - y| <= h, s >= 0  =>  |s r - s y| <= s h  (h = 1/2)"),
    Theorem("rtn_frobenius_bound", *_COMPRESSION, "each |w - q(w)| <= s h  =>  ||W - Q(W)||_F^2 <= n (s h)^2"),
)

#: Lean lemmas used inside proofs; they are steps, not bounds, so they have no twins.
HELPER_LEMMAS: dict[str, str] = {
    "Scalar.mul_le_mul_of_nonneg_right": "ordered-field step derived from the Scalar fields",
    "sumSq_le_card_mul": "shared step of magnitude_pruning_frobenius and rtn_frobenius_bound",
}

#: Public functions of ``rhojax.bounds.twins`` that are tools, not twins.
TWIN_HELPERS: frozenset[str] = frozenset({"fro", "op_norm", "rtn_step", "linear_branch", "array_module"})


def theorem(name: str) -> Theorem:
    for entry in THEOREMS:
        if entry.name == name:
            return entry
    raise KeyError(f"no theorem {name!r} in the manifest")


_COMMENT = re.compile(r"/-.*?-/|--[^\n]*", re.DOTALL)
_FORBIDDEN = re.compile(r"\b(sorry|admit|axiom|axioms)\b")
_DECLARATION = re.compile(r"^\s*(?:@\[[^\]]*\]\s*)?(?:private\s+|protected\s+)?theorem\s+([\w.']+)", re.MULTILINE)


def strip_comments(lean_source: str) -> str:
    """Lean source without ``--`` line comments and ``/- ... -/`` block and doc comments."""
    return _COMMENT.sub(" ", lean_source)


def forbidden_tokens(lean_source: str) -> list[str]:
    """``sorry``, ``admit`` and ``axiom`` occurrences in the code (comments excluded)."""
    return _FORBIDDEN.findall(strip_comments(lean_source))


def declared_theorems(lean_source: str) -> list[str]:
    """Names of the ``theorem`` declarations in a Lean source."""
    return _DECLARATION.findall(strip_comments(lean_source))
