"""Command-line options built from a study's settings dataclass, so defaults are written once.

Every field of a frozen settings dataclass becomes ``--field-name`` with the field's default and its
``metadata["help"]`` (a boolean field also gets ``--no-field-name``); tuple fields are given comma-separated
(``--eps 0.001,0.01``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable

import typer

from rhojax.errors import RhojaxError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_tuple(annotation) -> bool:
    return typing.get_origin(annotation) is tuple


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def settings_parameters(cls) -> list[inspect.Parameter]:
    """One keyword-only typer option per field of the settings dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    parameters = []
    for field in dataclasses.fields(cls):
        annotation, default = hints[field.name], _default(field)
        if _is_tuple(annotation):
            annotation, default = str, ",".join(str(v) for v in default)
        names = flag(field.name) + (f"/--no-{flag(field.name)[2:]}" if annotation is bool else "")
        option = typer.Option(default, names, help=field.metadata.get("help", ""))
        parameters.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=annotation))
    return parameters


def settings_from_options(cls, values: dict):
    """Build ``cls`` from option values, parsing comma-separated tuple fields with the element type."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        value = values[field.name]
        annotation = hints[field.name]
        if _is_tuple(annotation) and isinstance(value, str):
            element = typing.get_args(annotation)[0]
            try:
                value = tuple(element(v.strip()) for v in value.split(",") if v.strip())
            except ValueError as e:
                raise RhojaxError(f"{flag(field.name)} {value!r}: expected comma-separated {element.__name__} values")\
                    from e
        kwargs[field.name] = value
    return cls(**kwargs)


def with_settings(cls) -> Callable[[Callable], Callable]:
    """Decorate a command ``fn(..., settings: cls)``: its CLI gains one option per settings field."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        own = [p for p in signature.parameters.values() if p.name != "settings"]
        names = [f.name for f in dataclasses.fields(cls)]

        @functools.wraps(fn)
        def command(**kwargs):
            values = {name: kwargs.pop(name) for name in names}
            return fn(**kwargs, settings=settings_from_options(cls, values))

        command.__signature__ = signature.replace(parameters=own + settings_parameters(cls))
        return command

    return decorate
