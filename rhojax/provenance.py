"""Where a result came from: command line, rhojax commit, package versions and machine.

Recorded in every result file and data file so that a number can be traced and regenerated. Wall
times are not part of it (they differ between identical runs); studies record them separately.
The commit is read once per process (cached), and long-running entry points call :func:`provenance`
when they start, so a run during which commits land is stamped with the code it started with.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "numpy", "transformers", "tokenizers", "gguf", "torch")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def git_commit() -> str:
    """The commit of the rhojax checkout, with ``+dirty`` for uncommitted changes; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU, core count, memory and the JAX backend and devices."""
    import jax

    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gib = None
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": memory_gib, "system": platform.system(),
            "backend": jax.default_backend(), "devices": [str(d.device_kind) for d in jax.devices()]}


def provenance(command: list[str] | None = None) -> dict:
    """Command line (``sys.argv`` by default), commit, Python and package versions, machine."""
    from rhojax import __version__

    argv = sys.argv if command is None else command
    program = Path(argv[0]).name if argv else ""
    if program.endswith(".py"):  # a script: name it as it is run from the repository root
        path = Path(argv[0]).resolve()
        root = Path(__file__).resolve().parent.parent
        program = f"python {path.relative_to(root) if path.is_relative_to(root) else path}"
    return {
        "command": " ".join([program, *(shlex.quote(a) for a in argv[1:])]) if argv else "",
        "rhojax": __version__,
        "commit": git_commit(),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "machine": machine(),
    }
