"""Atomic replacement of an output folder: written whole in a temporary sibling, then renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from rhojax.errors import RhojaxError


@contextlib.contextmanager
def atomic_folder(folder: str | Path, marker: str, what: str) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``folder`` to write into; when the block ends without error it
    replaces ``folder``, which may be absent, empty or an earlier output holding the file ``marker`` (any
    other folder is refused). Nothing is left half-written; ``what`` names the output in errors."""
    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        yield tmp
        if folder.exists():
            if not (folder / marker).exists() and any(folder.iterdir()):
                raise RhojaxError(f"{folder}: exists and is not a {what}; choose another folder")
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    except OSError as e:
        raise RhojaxError(f"{folder}: cannot write the {what} ({e})") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
