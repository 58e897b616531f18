"""Helpers for the frozen settings dataclass of each study (the single source of its defaults)."""

from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, help: str) -> Any:  # noqa: A002 - the CLI's word for it
    """A settings field with its default and a one-line help text (the CLI option's help)."""
    return dataclasses.field(default=default, metadata={"help": help})


def run_identity(model, settings: Any) -> dict:
    """What identifies a run besides the study's settings: model, dtype and the rhojax version."""
    from rhojax import __version__

    return {"model": model.spec, "dtype": model.dtype, "rhojax": __version__,
            "settings": dataclasses.asdict(settings)}
