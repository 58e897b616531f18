"""Runs tests/multidevice_checks.py on 8 simulated CPU devices.

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` only takes effect before JAX initialises, and this
process already has one device, so the checks run in a fresh pytest process with the flag set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.devices import host_devices_env

CHECKS = Path(__file__).resolve().parent / "multidevice_checks.py"


def test_eight_devices_equal_one_device():
    env = host_devices_env(8)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKS.parent.parent), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "pytest", str(CHECKS), "-q", "-p", "no:cacheprovider",
                             "-p", "no:xdist", "-rs"], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "skipped" not in result.stdout  # every check ran on 8 devices
