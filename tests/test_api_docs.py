"""The API reference builds from the docstrings: every public name documented, and pdoc renders without warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
api_docs = load_script("api_docs")


def test_every_public_name_has_a_docstring():
    assert api_docs.missing_docstrings() == []


def test_the_check_finds_a_missing_docstring(tmp_path, monkeypatch):
    """The walk is not vacuous: an undocumented public function, class or method is reported."""
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A package."""\n__all__ = ["f", "C", "g"]\n'
        "def f():\n    pass\n"
        "class C:\n    def method(self):\n        pass\n"
        'def g():\n    """Documented."""\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert api_docs.missing_docstrings(("fakepkg",)) == ["fakepkg.C", "fakepkg.C.method", "fakepkg.f"]


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("pdoc")
    assert api_docs.build(tmp_path) == []
    index = (tmp_path / "rhojax.html").read_text()
    for name in ("rho_profile", "set_site", "rank_layers", "loss"):
        assert f'id="{name}"' in index
    assert (tmp_path / "rhojax" / "compress.html").exists() and (tmp_path / "rhojax" / "eval.html").exists()
