"""Shared test configuration: hypothesis profiles.

``dev`` (the default) keeps the whole suite fast on a small machine; ``ci`` (selected when the
``CI`` environment variable is set) runs more examples.  Neither has a deadline: timing on a
shared 2-core runner is noise, and the limits tests measure time themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of the test's own (the pattern-or-path rule and relative outputs look at it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
