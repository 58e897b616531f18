"""The environment of a test subprocess that sees the CPU as several devices."""

from __future__ import annotations

import os


def host_devices_env(count: int, **extra: str) -> dict[str, str]:
    """This process's environment with the CPU split into ``count`` devices; the flag is appended to any
    ``XLA_FLAGS`` already set (``make test`` sets one), since XLA reads that variable once, at start-up."""
    flags = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), f"--xla_force_host_platform_device_count={count}"]))
    return {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", **extra}
