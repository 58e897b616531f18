"""Build the API reference (HTML, with pdoc) from the docstrings of rhojax's public API.

The public API is what ``__all__`` names: the top-level ``rhojax`` and its public subpackages
(:data:`PUBLIC_PACKAGES`). Run

    .venv/bin/python scripts/api_docs.py build/api     # what `make docs` does

It exits 1, printing them, if a public function, class or public method has no docstring of its own,
or if pdoc warns while rendering. ``tests/test_api_docs.py`` runs the same checks.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import warnings
from pathlib import Path

#: The packages whose ``__all__`` is the public API (the CLI layer, reports and studies are not in it).
PUBLIC_PACKAGES = (
    "rhojax",
    "rhojax.allocation",
    "rhojax.compress",
    "rhojax.data",
    "rhojax.depth",
    "rhojax.eval",
    "rhojax.heal",
    "rhojax.io",
    "rhojax.models",
    "rhojax.plan",
    "rhojax.propagation",
    "rhojax.sensitivity",
    "rhojax.structure",
)


def _own_doc(obj) -> str:
    """``obj``'s own docstring: not inherited, and not the signature dataclasses write when there is none."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
        return ""
    return (doc or "").strip()


def missing_docstrings(packages=PUBLIC_PACKAGES) -> list[str]:
    """Public names (``package.__all__``, and the public methods and properties of public classes) without
    a docstring of their own. Constants are documented by their package and are not checked."""
    missing = []
    for package_name in packages:
        package = importlib.import_module(package_name)
        if not _own_doc(package):
            missing.append(package_name)
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.ismodule(obj):
                continue
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            if not _own_doc(obj):
                missing.append(f"{package_name}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    target = member.fget if isinstance(member, property) else member
                    if isinstance(target, (staticmethod, classmethod)):
                        target = target.__func__
                    if inspect.isfunction(target) and not _own_doc(target):
                        missing.append(f"{package_name}.{name}.{attr}")
    return sorted(set(missing))


def build(output: Path, packages=PUBLIC_PACKAGES) -> list[str]:
    """Render the reference into ``output``; returns pdoc's warnings (empty when all is well)."""
    import pdoc
    import pdoc.render

    top = importlib.import_module("rhojax")
    # a subpackage the top level already lists in __all__ (rhojax.compress) gets its page from there
    pages = [p for p in packages if p == "rhojax" or p.rsplit(".", 1)[-1] not in top.__all__]
    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*pages, output_directory=Path(output))
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="build/api", type=Path)
    args = parser.parse_args(argv)
    problems = [f"no docstring: {name}" for name in missing_docstrings()]
    problems += [f"pdoc: {w}" for w in build(args.output)]
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"API reference written to {args.output}/index.html")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
