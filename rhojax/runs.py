"""One run folder for every study: settings recorded once, finished parts kept, every write atomic.

A :class:`RunFolder` is a directory with ``run.json`` (the settings that define the run: model,
dtype and rhojax version included) and ``parts/`` (one JSON file per finished unit of work).
Opening a folder that holds a run with other settings raises :class:`RunFolderError` naming the
keys that differ, so results of two settings are never mixed. :meth:`RunFolder.part` computes a
unit of work only when its file is missing, which is how every study resumes after a kill:
finished parts are skipped, the part in flight is recomputed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rhojax.errors import RhojaxError
from rhojax.report.jsonio import plain, read_jsonl, write_json, write_jsonl

RUN_FILE = "run.json"


class RunFolderError(RhojaxError):
    """A run folder that cannot be used for the asked run (other settings, or not writable)."""


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the leaves of nested settings with dotted keys."""
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def settings_difference(saved: dict, asked: dict) -> list[str]:
    """``key: saved -> asked`` for every leaf that differs between two settings trees."""
    a, b = flatten(saved), flatten(asked)
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}" for k in sorted(set(a) | set(b))
            if a.get(k, "(absent)") != b.get(k, "(absent)")]


def as_settings(settings: Any) -> dict:
    """Plain JSON form of a settings dataclass or dict (tuples become lists, as JSON reads them back)."""
    return json.loads(json.dumps(plain(settings), sort_keys=True))


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """A run directory bound to its settings. Create it with :meth:`open`."""

    path: Path
    settings: dict

    @classmethod
    def open(cls, path: str | Path, settings: Any) -> RunFolder:
        """Create ``path`` for a run with ``settings``, or reopen it when it holds the same settings."""
        path = Path(path)
        asked = as_settings(settings)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"{path}: cannot create the run folder ({e})") from e
        run_file = path / RUN_FILE
        if run_file.exists():
            saved = json.loads(run_file.read_text())["settings"]
            changed = settings_difference(saved, asked)
            if changed:
                shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
                raise RunFolderError(
                    f"{path} holds a run with other settings ({shown}): use another folder, or the same settings "
                    "to resume"
                )
        else:
            write_json(run_file, {"settings": asked})
        return cls(path, asked)

    @classmethod
    def for_study(cls, path: str | Path, model, settings: Any) -> RunFolder:
        """:meth:`open` for a study of ``model`` under its settings dataclass, identified by
        :func:`rhojax.settings.run_identity` (model, dtype, rhojax version, settings less the execution-only
        ones)."""
        from rhojax.settings import run_identity

        return cls.open(path, run_identity(model, settings))

    def sub(self, name: str, settings: Any) -> RunFolder:
        """A nested run folder ``path/name`` with its own settings (a study inside a larger job)."""
        return RunFolder.open(self.path / name, settings)

    def file(self, name: str) -> Path:
        """Path of an output file of this run (written by the caller, atomically)."""
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / "parts" / f"{name}.json").exists()

    def part(self, name: str, compute: Callable[[], Any]) -> Any:
        """The JSON result of unit ``name``: read back if finished, else ``compute()``d and saved.

        The value returned is always the one read back from disk, so a fresh run and a resumed
        run hand the same (JSON-plain) values to what follows.
        """
        path = self.path / "parts" / f"{name}.json"
        if not path.exists():
            write_json(path, {"value": compute()})
        return json.loads(path.read_text())["value"]

    def read(self, name: str) -> Any:
        """The value of the finished part ``name`` (see :meth:`has`)."""
        return json.loads((self.path / "parts" / f"{name}.json").read_text())["value"]

    def parts(self) -> Iterator[str]:
        folder = self.path / "parts"
        return iter(sorted(p.stem for p in folder.glob("*.json"))) if folder.exists() else iter(())

    def records(self, name: str) -> list[dict]:
        """Records of the append-only JSON-lines file ``name`` (a torn last line from a kill is dropped
        and the file rewritten without it)."""
        path = self.path / name
        records = read_jsonl(path)
        if path.exists():
            write_jsonl(path, records)
        return records

    def write(self, name: str, data: Any) -> Path:
        """Write an output JSON document atomically."""
        return write_json(self.path / name, data)
