"""Hypothesis profiles and the shared bound assertion of the property tests.

``ci`` (the default) keeps the whole folder to well under a minute on two cores; ``dev`` searches
harder (CI runs both). Select with ``HYPOTHESIS_PROFILE=dev``. Every test computes the actual side
itself, in plain NumPy written in the test, checks that the twin's actual side agrees, and asserts
``actual <= twin bound`` with round-off tolerance only; it steers Hypothesis towards tight cases with
``target(actual / bound)``. The tightness (bound / actual) seen per theorem is printed in the
terminal summary.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, settings, target

from rhojax.bounds.twins import ROUNDOFF, BoundCheck

settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_TIGHTNESS: dict[str, list[float]] = defaultdict(list)


@pytest.fixture(scope="session")
def assert_bound():
    """``assert_bound(theorem, check, actual)``: with ``actual`` computed by the test itself, assert that
    the twin's ``check.actual`` agrees and that ``actual <= check.bound`` (round-off tolerance), and
    record the tightness."""

    def check_bound(theorem: str, check: BoundCheck, actual: float) -> None:
        assert np.isfinite(check.bound), f"{theorem}: bound is {check.bound}"
        assert abs(float(check.actual) - actual) <= 1e-9 * abs(actual) + ROUNDOFF * check.scale, \
            f"{theorem}: the twin's actual side {check.actual!r} differs from the test's {actual!r}"
        check = BoundCheck(check.bound, actual, check.scale)
        assert check.holds(), f"{theorem} violated: actual {check.actual!r} > bound {check.bound!r}"
        if check.bound > 0:
            target(check.actual / check.bound, label=theorem)
        if check.actual > 1e-9 * check.scale:  # above round-off: a meaningful tightness
            _TIGHTNESS[theorem].append(float(check.tightness))

    return check_bound


def pytest_terminal_summary(terminalreporter):
    if not _TIGHTNESS:
        return
    terminalreporter.section("bound tightness (bound / actual) over the drawn examples")
    for theorem, values in sorted(_TIGHTNESS.items()):
        finite = np.asarray([v for v in values if np.isfinite(v)])
        if finite.size:
            terminalreporter.write_line(
                f"{theorem:32s} n={finite.size:4d} min={finite.min():.4g} median={np.median(finite):.4g}"
            )
