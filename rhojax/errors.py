"""User-facing errors. The CLI prints their message on one line, without a traceback."""


class RhojaxError(Exception):
    """A user mistake or a missing resource; the message names the file, tensor or option and the fix."""


class LoadError(RhojaxError, ValueError):
    """A model file, folder or tensor that cannot be loaded as asked."""


class DataError(RhojaxError, ValueError):
    """Missing or malformed text or task data."""


class NumericalError(RhojaxError, ArithmeticError):
    """A computation produced NaN or Inf; the message says where it first appeared (layer and stage)."""
