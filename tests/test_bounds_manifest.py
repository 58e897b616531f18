"""Static checks of the formal side: Lean theorem <-> Coq theorem <-> property test <-> twin, the Coq
hypotheses against the manifest's informal ones, and no escape hatches in Lean."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from rhojax.bounds import manifest, twins

ROOT = Path(__file__).resolve().parents[1]
LEAN = ROOT / "lean"
COQ = ROOT / "coq"
LEAN_FILES = sorted(LEAN.rglob("*.lean"))
PROPERTY_TESTS = ROOT / "property_tests"


def _lean_theorems() -> dict[str, str]:
    """Short theorem name -> file (relative to the repo root), over every Lean source but the lakefile."""
    found = {}
    for path in LEAN_FILES:
        if path.name == "lakefile.lean":
            continue
        for name in manifest.declared_theorems(path.read_text()):
            found[name] = str(path.relative_to(ROOT))
    return found


def _property_tests() -> dict[str, str]:
    """Test function name -> module name, over property_tests/test_*.py."""
    tests = {}
    for path in PROPERTY_TESTS.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                tests[node.name] = path.stem
    return tests


def test_lean_project_is_core_only_and_pinned():
    toolchain = (LEAN / "lean-toolchain").read_text().strip()
    assert toolchain.startswith("leanprover/lean4:v4."), toolchain
    assert (LEAN / "lakefile.lean").exists()
    for path in LEAN_FILES:
        for line in manifest.strip_comments(path.read_text()).splitlines():
            if line.startswith("import "):
                assert line.split()[1].split(".")[0] in ("RhojaxBounds", "Lake"), f"{path}: {line}"


@pytest.mark.parametrize("path", LEAN_FILES, ids=lambda p: p.name)
def test_no_sorry_admit_or_axiom(path):
    assert manifest.forbidden_tokens(path.read_text()) == [], f"{path} contains sorry/admit/axiom"


@pytest.mark.parametrize("source", ["theorem t : 1 = 1 := by sorry", "theorem t : True := by admit",
                                    "axiom magic : False", "-- fine\ntheorem t : 1 = 1 := sorry"])
def test_forbidden_token_scan_catches_escape_hatches(source):
    assert manifest.forbidden_tokens(source)


def test_forbidden_token_scan_ignores_comments():
    assert manifest.forbidden_tokens("/- no sorry here -/\n-- nor admit\ntheorem t : 1 = 1 := rfl") == []


@pytest.mark.parametrize("path", LEAN_FILES, ids=lambda p: p.name)
def test_lean_brackets_balance(path):
    code = manifest.strip_comments(path.read_text())
    for opening, closing in ("()", "[]", "{}", "⟨⟩"):
        assert code.count(opening) == code.count(closing), f"{path}: unbalanced {opening}{closing}"


def test_every_theorem_has_its_twins_and_every_twin_its_theorem():
    lean = _lean_theorems()
    listed = {t.name for t in manifest.THEOREMS}
    helpers = set(manifest.HELPER_LEMMAS)
    assert len(listed) >= 12
    assert set(lean) == listed | helpers, f"theorems without a manifest entry: {set(lean) - listed - helpers}; " \
                                          f"entries without a theorem: {(listed | helpers) - set(lean)}"
    tests = _property_tests()
    twin_functions = {name for name, fn in inspect.getmembers(twins, inspect.isfunction)
                      if fn.__module__ == twins.__name__ and not name.startswith("_")}
    for entry in manifest.THEOREMS:
        assert lean[entry.name] == entry.lean_file, entry.name
        assert tests.get(entry.test_name) == entry.test_module, f"{entry.name}: no property test {entry.test_name}"
        assert entry.twin in twin_functions, f"{entry.name}: no numeric twin"
    assert set(tests) == {t.test_name for t in manifest.THEOREMS}, "property tests without a theorem"
    assert twin_functions - manifest.TWIN_HELPERS == listed, "twins without a theorem"


def test_every_theorem_has_a_coq_statement_with_the_manifest_hypotheses():
    for entry in manifest.THEOREMS:
        coq_source = (ROOT / entry.coq_file).read_text()
        assert entry.name in manifest.coq_declarations(coq_source), f"{entry.coq_name} missing"
        assert manifest.hypothesis_mismatches(entry, coq_source, (ROOT / entry.lean_file).read_text()) == []


@pytest.mark.parametrize("change", ["drop", "variable", "extra"])
def test_hypothesis_check_catches_a_wrong_manifest_entry(change):
    entry = manifest.theorem("lyapunov_monotone")
    hypotheses = {"drop": entry.hypotheses[:-1],
                  "variable": (*entry.hypotheses[:-1], "beta <= h1"),  # beta <= alpha written wrongly
                  "extra": (*entry.hypotheses, "e0 <= e1")}[change]
    wrong = dataclasses.replace(entry, hypotheses=hypotheses)
    problems = manifest.hypothesis_mismatches(wrong, (ROOT / entry.coq_file).read_text(),
                                              (ROOT / entry.lean_file).read_text())
    assert problems, change


def test_proved_facts_exist_in_coq_and_nothing_is_listed_twice():
    declared = {f"Rhojax.{p.stem}.{name}" for p in COQ.glob("*.v")
                for name in manifest.coq_declarations(p.read_text(), ("Theorem", "Lemma", "Corollary", "Definition"))}
    names = [e.coq_name for e in (*manifest.THEOREMS, *manifest.PROVED_FACTS)]
    assert len(names) == len(set(names)), "a Coq theorem is listed twice"
    assert set(names) <= declared, f"not in coq/: {set(names) - declared}"
