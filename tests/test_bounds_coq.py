"""The Coq development compiles and every theorem rests on the standard axioms of Coq's reals only."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from rhojax.bounds import coq, manifest

ROOT = Path(__file__).resolve().parents[1]
COQ = ROOT / "coq"
needs_coq = pytest.mark.skipif(coq.coqc() is None, reason="coqc not installed (apt-get install -y coq); "
                                                           ".ci/run installs it and compiles coq/ first")


def _declared() -> list[str]:
    """Every Theorem / Lemma / Corollary of coq/*.v and every Coq name of the manifest, fully qualified."""
    declared = [f"Rhojax.{m}.{name}" for m in coq.MODULES
                for name in manifest.coq_declarations((COQ / f"{m}.v").read_text())]
    listed = [entry.coq_name for entry in (*manifest.THEOREMS, *manifest.PROVED_FACTS)]
    return list(dict.fromkeys(declared + listed))


@functools.cache
def _compiled(tmp: Path) -> Path:
    for module in coq.MODULES:
        shutil.copy(COQ / f"{module}.v", tmp / f"{module}.v")
    coq.build(tmp)
    return tmp


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    return _compiled(tmp_path_factory.mktemp("coq"))


def test_build_script_lists_every_module():
    assert set(coq.MODULES) == {p.stem for p in COQ.glob("*.v")}
    assert " ".join(coq.MODULES) in (COQ / "build.sh").read_text()


@pytest.mark.parametrize("module", coq.MODULES)
def test_no_admitted_axiom_or_parameter(module):
    assert manifest.coq_forbidden_tokens((COQ / f"{module}.v").read_text()) == []


@pytest.mark.parametrize("source", ["Lemma a : 1 = 1. Admitted.", "Axiom magic : False.",
                                    "Parameter x : nat.", "Proof. admit. Qed.", "Hypothesis h : False."])
def test_forbidden_scan_catches_escape_hatches(source):
    assert manifest.coq_forbidden_tokens(source)


@needs_coq
def test_every_theorem_uses_only_the_axioms_of_the_reals(compiled):
    names = _declared()
    assert len(names) >= 50
    axioms = coq.assumptions(compiled, names)
    if axioms - coq.REALS_AXIOMS:  # name the culprits
        each = coq.assumptions_each(compiled, names)
        culprits = {n: sorted(a - coq.REALS_AXIOMS) for n, a in each.items() if a - coq.REALS_AXIOMS}
        pytest.fail(f"beyond the reals' axioms: {culprits}")
    assert axioms == coq.REALS_AXIOMS  # statements about R rest on them: the parser sees axioms


@needs_coq
def test_an_added_axiom_is_reported(compiled):
    (compiled / "Cheat.v").write_text("Require Import Reals.\nOpen Scope R_scope.\n"
                                      "Axiom cheat : forall x : R, x <= 0.\n"
                                      "Theorem uses_cheat : 1 <= 0. Proof. apply cheat. Qed.\n"
                                      "Theorem closed : True. Proof. exact I. Qed.\n")
    coq.build(compiled, ("Cheat",))
    names = ["Rhojax.Cheat.uses_cheat", "Rhojax.Cheat.closed"]
    assert "cheat" in coq.assumptions(compiled, names, ("Cheat",))  # printed unqualified
    each = coq.assumptions_each(compiled, names, ("Cheat",))
    assert "cheat" in each["Rhojax.Cheat.uses_cheat"] and each["Rhojax.Cheat.closed"] == frozenset()


def test_parse_assumptions_reads_blocks_in_order():
    output = ("Closed under the global context\nAxioms:\nA.b : forall x,\n  x = x\nC.d\n  : nat\n"
              "Closed under the global context\n")
    assert coq.parse_assumptions(output) == [frozenset(), frozenset({"A.b", "C.d"}), frozenset()]
