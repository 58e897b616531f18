"""Compile the Coq development and read ``Print Assumptions`` of its theorems (needs ``coqc`` on PATH).

``coq/build.sh`` compiles the modules in order; :func:`assumptions` writes a file that imports them
and prints the assumptions of each named theorem, and returns the axioms each depends on. The only
axioms allowed are the three that Coq 8.16's real numbers (``Reals``, built on classical Dedekind
cuts) rest on: :data:`REALS_AXIOMS`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from rhojax.errors import RhojaxError

#: ``Print Assumptions`` of any statement about ``R`` in Coq 8.16 lists (a subset of) these.
REALS_AXIOMS = frozenset({
    "ClassicalDedekindReals.sig_forall_dec",
    "ClassicalDedekindReals.sig_not_dec",
    "FunctionalExtensionality.functional_extensionality_dep",
})
MODULES = ("Sums", "Norms", "Matrix", "Propagation", "Compression", "Site")


def coqc() -> str | None:
    """The ``coqc`` executable, or None when Coq is not installed."""
    return shutil.which("coqc")


def _run(args: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RhojaxError(f"{' '.join(args)} failed in {cwd}: {done.stdout}{done.stderr}".strip())
    return done.stdout


def build(folder: Path, modules: Sequence[str] = MODULES) -> None:
    """Compile ``folder/<module>.v`` in order, with ``folder`` mapped to the logical path ``Rhojax``."""
    for module in modules:
        _run(["coqc", "-q", "-R", ".", "Rhojax", f"{module}.v"], folder)


def parse_assumptions(output: str) -> list[frozenset[str]]:
    """The axioms of each ``Print Assumptions`` block of coqc's ``output``, in order.

    Each block starts with ``Closed under the global context`` (no axioms) or ``Axioms:`` followed
    by entries ``name : type`` or ``name`` then an indented ``: type`` (types continue on indented lines)."""
    blocks = re.split(r"^(?=Closed under the global context|Axioms:)", output, flags=re.MULTILINE)
    result = []
    for block in blocks:
        if block.startswith("Closed under the global context"):
            result.append(frozenset())
        elif block.startswith("Axioms:"):
            lines = block.removeprefix("Axioms:").splitlines()
            result.append(frozenset(line.split()[0] for line in lines if line and not line[0].isspace()))
    return result


def _imports(modules: Sequence[str]) -> str:
    return "".join(f"Require Import Rhojax.{m}.\n" for m in modules)


def assumptions(folder: Path, names: Sequence[str], modules: Sequence[str] = MODULES) -> frozenset[str]:
    """The axioms that the fully qualified theorems ``names`` of the compiled ``modules`` rest on, together.

    One ``Print Assumptions`` of a term that mentions every theorem (``let _ := @name in ... I``):
    a single pass over the reals' library instead of one per theorem (each costs seconds)."""
    script = folder / "PrintAssumptions.v"
    body = "".join(f"  let _ := @{name} in\n" for name in names)
    script.write_text(f"{_imports(modules)}Definition everything : True :=\n{body}  I.\n"
                      "Print Assumptions everything.\n")
    (blocks,) = parse_assumptions(_run(["coqc", "-q", "-R", ".", "Rhojax", script.name], folder))
    return blocks


def assumptions_each(folder: Path, names: Sequence[str], modules: Sequence[str] = MODULES) -> dict[str, frozenset[str]]:
    """``name -> axioms`` per theorem (one ``Print Assumptions`` each: slow, for naming culprits)."""
    script = folder / "PrintAssumptionsEach.v"
    script.write_text(_imports(modules) + "".join(f"Print Assumptions {name}.\n" for name in names))
    blocks = parse_assumptions(_run(["coqc", "-q", "-R", ".", "Rhojax", script.name], folder))
    if len(blocks) != len(names):
        raise RhojaxError(f"expected {len(names)} Print Assumptions blocks from {script}, got {len(blocks)}")
    return dict(zip(names, blocks, strict=True))
