"""docs/tutorial.md runs as written, and no reproduce snippet in the docs reaches into the CLI layer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: Path) -> list[str]:
    return BLOCK.findall(markdown.read_text())


def test_tutorial_uses_only_the_public_api():
    code = "\n".join(python_blocks(TUTORIAL))
    assert len(python_blocks(TUTORIAL)) >= 8
    imports = set(re.findall(r"^\s*(?:import|from) ([\w.]+)", code, re.MULTILINE))
    assert imports == {"jax", "jax.numpy", "numpy", "rhojax"}, imports
    for name in ("rho_profile", "perplexity", "block_influence", "rank_layers", "remove_layers", "set_site",
                 "compress", "grad", "vmap", "apply_plan"):
        assert name in code


def test_no_reproduce_snippet_uses_the_cli_layer():
    markdown = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    offenders = [str(p.relative_to(ROOT)) for p in markdown
                 if any("rhojax.commands" in block for block in python_blocks(p))]
    assert not offenders, f"snippets importing rhojax.commands (use the library's public API): {offenders}"


@pytest.mark.slow
def test_tutorial_code_blocks_run(capsys, monkeypatch, smollm2):
    """Every block, in order, in one namespace. ``rhojax.load`` of the packaged model returns the copy this
    test process has already loaded (loading itself is tested with the loaders), to keep the test short."""
    import rhojax

    monkeypatch.setattr(rhojax, "load", lambda spec, **kwargs: smollm2 if spec == "smollm2-135m" and not kwargs
                        else pytest.fail(f"the tutorial loads {spec!r} {kwargs}: update this test"))
    namespace: dict = {}
    for number, block in enumerate(python_blocks(TUTORIAL), 1):
        exec(compile(block, f"{TUTORIAL.name} block {number}", "exec"), namespace)
    rhojax, np = namespace["rhojax"], namespace["np"]
    # the printed results are the public API's, so check them against what they must be
    assert isinstance(namespace["model"], rhojax.Model)
    assert namespace["profile"].rho.shape == (namespace["model"].config.num_layers, 4)
    assert float(np.mean(np.asarray(namespace["w_pruned"]) == 0)) == pytest.approx(0.5, abs=1e-3)
    assert namespace["shallow"].config.num_layers == namespace["model"].config.num_layers - 4
    assert float(namespace["after"]) < float(namespace["value"])
    assert float(namespace["losses"][0]) == pytest.approx(float(rhojax.loss(namespace["model"],
                                                                              namespace["evaluation"][:2])), rel=1e-5)
    assert "perplexity" in capsys.readouterr().out
