"""The formal side in one table: each theorem's Lean name, Coq name, Hypothesis test and numeric twin.

``coq/`` is the machine-checked side (Coq 8.16 over ``Reals``, compiled in CI); ``lean/`` is an
unchecked Lean 4 mirror for users with a toolchain. ``tests/test_bounds_manifest.py`` fails when a
theorem lacks an entry here, when an entry names a theorem, test or twin that does not exist, when
a twin or property test is not listed, or when a Coq statement's hypotheses do not match the
informal hypotheses written here (same number, same theorem variables in each, in order).
``tests/test_bounds_coq.py`` prints the assumptions of every Coq theorem.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Theorem:
    """One theorem: Lean ``Rhojax.[NormedMaps.]name`` in ``lean_file``, Coq ``Rhojax.<coq_module>.name``,
    its Hypothesis twin ``property_tests/<test_module>.py::test_<name>`` and its numeric twin
    ``rhojax.bounds.twins.<name>``. ``hypotheses`` are the informal hypotheses, in the order of the
    Coq statement's ``H...`` binders, written with the Coq statement's variable names."""

    name: str
    lean_file: str
    coq_module: str
    test_module: str
    statement: str
    hypotheses: tuple[str, ...] = ()

    @property
    def test_name(self) -> str:
        return f"test_{self.name}"

    @property
    def twin(self) -> str:
        return self.name

    @property
    def coq_name(self) -> str:
        return f"Rhojax.{self.coq_module}.{self.name}"

    @property
    def coq_file(self) -> str:
        return f"coq/{self.coq_module}.v"


_MATRIX = ("lean/RhojaxBounds/Matrix.lean", "Matrix", "test_matrix_bounds")
_PROPAGATION = ("lean/RhojaxBounds/Propagation.lean", "Propagation", "test_propagation_bounds")
_COMPRESSION = ("lean/RhojaxBounds/Compression.lean", "Compression", "test_compression_bounds")
_ALL_UV = "for all u, v"

THEOREMS: tuple[Theorem, ...] = (
    Theorem("weight_perturbation", *_MATRIX, "||W'x - Wx|| <= ||W' - W|| ||x||"),
    Theorem("relative_weight_perturbation", *_MATRIX, "||W' - W|| <= d ||W||  =>  ||W'x - Wx|| <= d ||W|| ||x||",
            ("||W' - W|| <= d ||W||",)),
    Theorem("weight_input_error", *_MATRIX, "||W'x' - Wx|| <= ||W'|| ||x' - x|| + ||W' - W|| ||x||"),
    Theorem("additive_composition", *_MATRIX, "||W2 x - W x|| <= (||W2 - W1|| + ||W1 - W||) ||x||"),
    Theorem("two_matrix_chain", *_MATRIX, "||B'A'x - BAx|| <= ||B'|| ||A' - A|| ||x|| + ||B' - B|| ||A|| ||x||"),
    Theorem(
        "lipschitz_activation_chain", *_MATRIX,
        "||B' s(A'x) - B s(Ax)|| <= ||B'|| L ||A' - A|| ||x|| + ||B' - B|| ||s(Ax)||",
        ("L >= 0", f"||sigma u - sigma v|| <= L ||u - v|| {_ALL_UV}"),
    ),
    Theorem("residual_block", *_MATRIX, "F L-Lipschitz  =>  ||(u + Fu) - (v + Fv)|| <= (1 + L) ||u - v||",
            (f"||F u - F v|| <= L ||u - v|| {_ALL_UV}",)),
    Theorem("product_propagation", *_PROPAGATION, "a_{t+1} <= g_t a_t, g_t >= 0  =>  a_T <= (prod g) a_0",
            ("g_t >= 0 for every layer t", "a_{t+1} <= g_t a_t for every layer t")),
    Theorem(
        "geometric_series_bound", *_PROPAGATION,
        "a_{t+1} <= rho a_t + delta, rho c + delta <= c, a_0 <= c  =>  a_T <= c (c = max(a_0, delta/(1-rho)))",
        ("rho >= 0", "rho c + delta <= c", "a_0 <= c", "a_{t+1} <= rho a_t + delta for every layer t"),
    ),
    Theorem("lyapunov_monotone", *_PROPAGATION, "e1 <= beta e0, alpha h0 <= h1, beta <= alpha  =>  V_1 <= V_0",
            ("e0 >= 0", "e1 >= 0", "h0 >= 0", "e1 <= beta e0", "alpha h0 <= h1", "beta <= alpha")),
    Theorem(
        "magnitude_pruning_frobenius", *_COMPRESSION, "k pruned entries, |w| <= tau  =>  ||W - W'||_F^2 <= k tau^2",
        ("errSq is the sum of squares of the pruned entries", "every entry of pruned has square <= tau^2"),
    ),
    Theorem("rtn_rounding_bound", *_COMPRESSION, "|r - y| <= h, s >= 0  =>  |s r - s y| <= s h  (h = 1/2)",
            ("s >= 0", "(r - y)^2 <= h^2")),
    Theorem("rtn_frobenius_bound", *_COMPRESSION, "each |w - q(w)| <= s h  =>  ||W - Q(W)||_F^2 <= n (s h)^2",
            ("errSq is the sum of squares of errors", "every entry of errors has square <= (s h)^2")),
)


@dataclasses.dataclass(frozen=True)
class Fact:
    """A Coq theorem with no Lean counterpart: a norm or operator fact the Lean side assumes, or a
    step of a site bound. ``used_by`` names what relies on it."""

    name: str
    coq_module: str
    statement: str
    used_by: str

    @property
    def coq_name(self) -> str:
        return f"Rhojax.{self.coq_module}.{self.name}"


#: Coq theorems without a Lean counterpart: the facts the Lean setting takes as structure fields or
#: hypotheses (norm axioms, the rounding error), proved for real vectors and matrices, and the vector
#: steps of the site bounds (``rhojax/bounds/site.py``).
PROVED_FACTS: tuple[Fact, ...] = (
    Fact("cauchy_schwarz", "Sums", "(sum a_i b_i)^2 <= (sum a_i^2)(sum b_i^2)", "every norm fact"),
    Fact("vnorm_triangle", "Norms", "||x + y||_2 <= ||x||_2 + ||y||_2", "NormedMaps.norm_add_le"),
    Fact("fro_triangle", "Norms", "||A + B||_F <= ||A||_F + ||B||_F", "NormedMaps.norm_add_le (Frobenius)"),
    Fact("fro_sub_triangle", "Norms", "||A - C||_F <= ||A - B||_F + ||B - C||_F", "NormedMaps.*_sub_le_sub_add_sub"),
    Fact("mv_fro_bound", "Norms", "||A x||_2 <= ||A||_F ||x||_2", "NormedMaps.app_le"),
    Fact("mm_fro_bound", "Norms", "||X W||_F <= ||X||_F ||W||_F", "NormedMaps.app_le (rhojax's X @ W)"),
    Fact("schur_test", "Norms", "||A x||_2 <= sqrt(||A||_1 ||A||_inf) ||x||_2", "site bounds: certified ||W||_2"),
    Fact("frobenius_maps", "Matrix", "real matrices with the Frobenius norm satisfy every NormedMaps field",
         "the seven matrix theorems, instantiated"),
    Fact("weight_perturbation_fro", "Matrix", "||X W' - X W||_F <= ||W' - W||_F ||X||_F (rectangular)",
         "weight_perturbation on real matrices"),
    Fact("pruning_error_exact", "Compression", "||W - prune(W)||_F^2 = sum of the squared pruned entries",
         "magnitude_pruning_frobenius (its errSq hypothesis)"),
    Fact("pruning_error_threshold", "Compression", "pruned |w| <= tau  =>  ||W - prune(W)||_F^2 <= k tau^2",
         "magnitude_pruning_frobenius on real matrices"),
    Fact("round_half_even_error", "Compression", "|round(y) - y| <= 1/2 (round half to even, ties included)",
         "rtn_rounding_bound (its h = 1/2 hypothesis)"),
    Fact("round_half_even_nearest", "Compression", "|round(y) - y| <= |z - y| for every integer z",
         "the grid check of the RTN mutation test"),
    Fact("round_half_even_ties", "Compression", "frac(y) = 1/2  =>  round(y) is even", "jnp.round's tie rule"),
    Fact("rtn_entry_error", "Compression", "s > 0  =>  |s round(w/s) - w| <= s/2", "rtn_rounding_bound"),
    Fact("rtn_no_clipping", "Compression", "|w| <= max|w|  =>  |round(w / (max|w|/qmax))| <= qmax",
         "rtn_rounding_bound (clipping never acts)"),
    Fact("pointwise_scaled", "Site", "|f_i| <= k |d_i|  =>  ||f|| <= k ||d||", "site bounds: gate, up"),
    Fact("operator_after_hadamard", "Site", "|g_i| <= c, ||W v|| <= S ||v||  =>  ||W (g . e)|| <= S c ||e||",
         "site bounds: up, gate"),
    Fact("lipschitz_gate_step", "Site", "s L-Lipschitz, |u| <= c  =>  |(s(z') - s(z)) u| <= c L |z' - z|",
         "site bound: gate"),
    Fact("convex_mixing", "Site", "p_s >= 0  =>  ||sum_s p_s y_s|| <= sum_s p_s ||y_s||", "site bounds: v, q, k"),
    Fact("softmax_l1_step", "Site", "p a distribution, |d_s| <= M  =>  sum_s p_s |d_s - p.d| <= 2 M",
         "site bounds: q, k (softmax Lipschitz)"),
    Fact("softmax_l1_range", "Site", "p a distribution, lo <= d_s <= hi  =>  sum_s p_s |d_s - p.d| <= hi - lo",
         "site bounds: q, k (the range form evaluated)"),
    Fact("rmsnorm_step", "Site", "||a'/rms(a') - a/rms(a)|| <= ||a' - a|| / min(rms(a), rms(a'))",
         "site bounds: q, k, v, o (the second norm)"),
    Fact("tokens_frobenius", "Site", "||row_t|| <= b_t  =>  ||R||_F <= sqrt(sum_t b_t^2)", "every site bound"),
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


_COQ_COMMENT = re.compile(r"\(\*.*?\*\)", re.DOTALL)
_COQ_DECLARATION = re.compile(r"^\s*(?:Theorem|Lemma|Corollary|Definition)\s+([\w']+)", re.MULTILINE)
_COQ_FORBIDDEN = re.compile(r"\b(Admitted|admit|Axiom|Axioms|Parameter|Parameters|Conjecture|Hypothesis|Hypotheses)\b")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9']*")


@dataclasses.dataclass(frozen=True)
class Statement:
    """A theorem's statement split into its variables, its hypotheses (binders named ``H...`` in
    Coq, ``h...`` in Lean) and its conclusion."""

    variables: tuple[str, ...]
    hypotheses: tuple[str, ...]
    conclusion: str


def strip_coq_comments(coq_source: str) -> str:
    """Coq source without ``(* ... *)`` comments (not nested)."""
    return _COQ_COMMENT.sub(" ", coq_source)


def coq_forbidden_tokens(coq_source: str) -> list[str]:
    """``Admitted``, ``admit``, ``Axiom``, ``Parameter``, ``Conjecture`` or ``Hypothesis`` in the code."""
    return _COQ_FORBIDDEN.findall(strip_coq_comments(coq_source))


def coq_declarations(coq_source: str, kinds: tuple[str, ...] = ("Theorem", "Lemma", "Corollary")) -> list[str]:
    """Names of the declarations of the given ``kinds`` in a Coq source."""
    pattern = re.compile(rf"^\s*(?:{'|'.join(kinds)})\s+([\w']+)", re.MULTILINE)
    return pattern.findall(strip_coq_comments(coq_source))


def _top_level_groups(text: str, opening: str = "(", closing: str = ")") -> tuple[list[str], str]:
    """Leading bare names and ``( ... )`` groups of ``text`` and the rest after the top-level ``:``."""
    groups, i, bare = [], 0, []
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == opening:
            depth, j = 0, i
            while True:
                depth += {opening: 1, closing: -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            groups.append(text[i + 1:j])
            i = j + 1
        elif ch == ":":
            return bare + groups, text[i + 1:]
        elif ch in "{[":  # implicit / instance binders: skip them
            i = text.index({"{": "}", "[": "]"}[ch], i) + 1
        else:
            match = _IDENTIFIER.match(text, i) or re.match(r"\S+", text[i:])
            bare.append(match.group(0))
            i += len(match.group(0)) if match.re is _IDENTIFIER else match.end()
    raise ValueError("no top-level ':' in the statement")


def _split_statement(head: str, hypothesis_prefix: str) -> Statement:
    groups, conclusion = _top_level_groups(head)
    variables, hypotheses = [], []
    for group in groups:
        if ":" not in group:
            variables.append(group)
            continue
        names, _, kind = group.partition(":")
        names = names.split()
        if all(n.startswith(hypothesis_prefix) for n in names):
            hypotheses.extend(" ".join(kind.split()) for _ in names)
        else:
            variables.extend(names)
    return Statement(tuple(variables), tuple(hypotheses), " ".join(conclusion.split()))


def coq_statement(coq_source: str, name: str) -> Statement:
    """The statement of Coq theorem ``name``: text between its name and ``Proof.``."""
    code = strip_coq_comments(coq_source)
    match = re.search(rf"^\s*(?:Theorem|Lemma|Corollary)\s+{re.escape(name)}\b(.*?)\.\s*\n\s*Proof\.",
                      code, re.MULTILINE | re.DOTALL)
    if match is None:
        raise KeyError(f"no Coq theorem {name!r}")
    return _split_statement(match.group(1), "H")


def lean_statement(lean_source: str, name: str) -> Statement:
    """The statement of Lean theorem ``name``: text between its name and ``:=``."""
    code = strip_comments(lean_source)
    match = re.search(rf"^\s*theorem\s+(?:[\w.]+\.)?{re.escape(name)}\b(.*?):=", code, re.MULTILINE | re.DOTALL)
    if match is None:
        raise KeyError(f"no Lean theorem {name!r}")
    return _split_statement(match.group(1), "h")


def mentioned(text: str, variables: tuple[str, ...]) -> set[str]:
    """The theorem ``variables`` that ``text`` mentions (identifiers split at ``_`` and punctuation)."""
    return set(_IDENTIFIER.findall(text)) & set(variables)


def hypothesis_mismatches(entry: Theorem, coq_source: str, lean_source: str) -> list[str]:
    """Where ``entry.hypotheses`` disagree with the Coq statement (count, and the theorem variables each
    hypothesis mentions, in order) or with the Lean statement's number of hypotheses; ``[]`` if none."""
    coq_side = coq_statement(coq_source, entry.name)
    lean_side = lean_statement(lean_source, entry.name)
    problems = []
    if len(coq_side.hypotheses) != len(entry.hypotheses):
        problems.append(f"{entry.name}: Coq has {len(coq_side.hypotheses)} hypotheses, the manifest "
                        f"{len(entry.hypotheses)}")
    if len(lean_side.hypotheses) != len(coq_side.hypotheses):
        problems.append(f"{entry.name}: Lean has {len(lean_side.hypotheses)} hypotheses, "
                        f"Coq {len(coq_side.hypotheses)}")
    for formal, informal in zip(coq_side.hypotheses, entry.hypotheses, strict=False):  # counts checked above
        want, got = mentioned(formal, coq_side.variables), mentioned(informal, coq_side.variables)
        if want != got:
            problems.append(f"{entry.name}: Coq hypothesis {formal!r} mentions {sorted(want)}, "
                            f"the manifest's {informal!r} mentions {sorted(got)}")
    return problems
